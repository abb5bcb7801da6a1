// SPDX-License-Identifier: MIT
#include <sluice/engine/node.hpp>

#include <algorithm>
#include <exception>

namespace sluice::engine {

template <class Peer>
std::string Pin<Peer>::full_name() const {
    return node_->name() + "." + name_;
}
template class Pin<OutputPin>;
template class Pin<InputPin>;

Node::Node(std::string name, Kind kind) : name_(std::move(name)), kind_(kind) {}
Node::~Node() = default;

void Node::attach(NodeHost& host, const char* holder_name) noexcept {
    host_ = &host;
    signals_ = host.signals();
    holder_name_ = holder_name;
}

InputPin& Node::add_input(std::string name, FormatSet accepts, InputNeeds needs) {
    auto pin = std::make_unique<InputPin>();
    pin->node_ = this;
    pin->name_ = std::move(name);
    pin->index_ = inputs_.size();
    pin->accepts_ = std::move(accepts);
    pin->needs_ = needs;
    inputs_.push_back(std::move(pin));
    return *inputs_.back();
}

OutputPin& Node::add_output(std::string name, FormatSet offers) {
    auto pin = std::make_unique<OutputPin>();
    pin->node_ = this;
    pin->name_ = std::move(name);
    pin->index_ = outputs_.size();
    pin->offers_ = std::move(offers);
    outputs_.push_back(std::move(pin));
    return *outputs_.back();
}

void Node::remove_requested_pins(std::size_t inputs, std::size_t outputs, HostKey) noexcept {
    if (inputs < inputs_.size()) inputs_.resize(inputs);
    if (outputs < outputs_.size()) outputs_.resize(outputs);
}

InputPin& Node::add_optional_input(std::string name, FormatSet accepts, InputNeeds needs) {
    InputPin& pin = add_input(std::move(name), std::move(accepts), needs);
    pin.optional_ = true;
    return pin;
}

OutputPin& Node::add_optional_output(std::string name, FormatSet offers) {
    OutputPin& pin = add_output(std::move(name), std::move(offers));
    pin.optional_ = true;
    return pin;
}

NodeStats Node::stats() const noexcept {
    // relaxed: counters, each a snapshot on its own.
    return {counters_.in.load(std::memory_order_relaxed),     counters_.out.load(std::memory_order_relaxed),
            counters_.drops.load(std::memory_order_relaxed),  counters_.late.load(std::memory_order_relaxed),
            counters_.misses.load(std::memory_order_relaxed), counters_.max_lateness.load(std::memory_order_relaxed),
            lateness_.quantile(0.999),                        counters_.position.load(std::memory_order_relaxed)};
}

std::vector<std::pair<std::string, std::uint64_t>> Node::extra_stats() const { return {}; }
bool Node::passes_through(std::size_t, std::size_t) const { return false; }
bool Node::owns_streaming_thread() const noexcept { return kind_ == Kind::source; }
std::vector<Node::FileUse> Node::file_uses() const { return {}; }
bool Node::request_output() { return false; }
bool Node::seekable() const { return false; }
Status Node::seek(std::int64_t) { return {GraphErrc::unsupported_format, name_ + " cannot seek"}; }
bool Node::request_input() { return false; }

Status Node::set_property(std::string_view key, std::string_view) {
    for (const auto& [made_key, made_value] : made_with_)
        if (made_key == key)
            return {GraphErrc::bad_state, name_ + ": property '" + std::string(key) +
                                              "' is not live: it is fixed when the node is made (set it in the pipeline)"};
    return {GraphErrc::invalid_argument, name_ + ": no property '" + std::string(key) + "'"};
}

Status Node::get_property(std::string_view key, std::string& value) const {
    for (const auto& [made_key, made_value] : made_with_)
        if (made_key == key) {
            value = made_value;
            return {};
        }
    return {GraphErrc::invalid_argument, name_ + ": no property '" + std::string(key) + "'"};
}

FormatSet Node::output_formats(std::size_t output) const {
    const FormatSet& offers = outputs_.at(output)->offers_;
    if (inputs_.empty()) return offers;
    const FormatSet in{inputs_[0]->format_};
    return offers.empty() ? in : intersect(offers, in);
}

Status Node::configure() { return {}; }

BufferNeeds Node::output_buffers(std::size_t output) const {
    const MediaFormat& f = outputs_.at(output)->format_;
    return {f.kind == MediaKind::video ? f.frame_bytes() : 1024 * f.frame_bytes(), 1};
}

Status Node::start() { return {}; }
void Node::stop() {}
void Node::flush() {}
void Node::unblock() {}
void Node::forget_end_of_stream() {}
Flow Node::produce() { return Flow::end_of_stream; }

Flow Node::process(std::size_t, SampleRef&& s) {
    s.reset();
    count_drop();
    return Flow::ok;
}

void Node::end_of_stream(std::size_t) {
    if (outputs_.empty()) {
        host_->input_ended();
        return;
    }
    for (std::size_t o = 0; o < outputs_.size(); ++o) push_end_of_stream(o);
}

Result<SampleRef> Node::get_buffer(std::size_t output) noexcept {
    auto s = outputs_[output]->allocator_->get_buffer(*signals_.stop_token, holder_name_);
    // The graph's pools name every holder (one store; see PoolReport and stop_stuck).
    if (s) s->set_holder(holder_name_);
    return s;
}

Flow Node::buffer_failed(std::error_code ec) noexcept {
    if (ec == Errc::not_committed || ec == Errc::cancelled) return Flow::stopped;
    try {
        return report_error(ec, name_ + ": cannot get an output buffer: " + ec.message());
    } catch (...) {
        return Flow::error;  // no memory left even to say so
    }
}

Flow Node::push(std::size_t output, SampleRef sample) noexcept {
    InputPin* in = outputs_[output]->peer_;
    if (in == nullptr) [[unlikely]]
        return Flow::ok;  // an optional output left unlinked: nobody wants the sample
    // relaxed: the flag is a hint checked per sample; flush() parks every streaming thread
    // before it touches node state, which is what makes flushing safe.
    if (signals_.flushing->load(std::memory_order_relaxed)) [[unlikely]] {
        count_drop();
        return Flow::flushing;
    }
    Node& downstream = *in->node_;
    // relaxed: statistics.
    counters_.out.fetch_add(1, std::memory_order_relaxed);
    downstream.counters_.in.fetch_add(1, std::memory_order_relaxed);
    if (sample.stop_time() != kNoTime) downstream.counters_.position.store(sample.stop_time(), std::memory_order_relaxed);
    sample.set_holder(downstream.holder_name_);
    try {
        return downstream.process(in->index_, std::move(sample));
    } catch (...) {
        return downstream.report_exception("process()");
    }
}

Flow Node::report_exception(const char* where) noexcept {
    std::string what = "an exception that is not a std::exception";
    if (!std::current_exception()) {
        what = "an unknown error";  // called outside a catch: `throw;` would terminate
    } else {
        try {
            throw;
        } catch (const std::exception& e) {
            what = e.what();
        } catch (...) {
        }
    }
    try {
        return report_error(make_error_code(engine::GraphErrc::bad_state), name_ + ": " + where + " threw: " + what);
    } catch (...) {
        return Flow::error;  // no memory left even to say so
    }
}

void Node::push_end_of_stream(std::size_t output) noexcept {
    InputPin* in = outputs_[output]->peer_;
    if (in == nullptr) return;  // an optional output left unlinked
    try {
        in->node_->end_of_stream(in->index_);
    } catch (...) {
        in->node_->report_exception("end_of_stream()");
    }
}

Flow Node::present(const SampleRef& sample) noexcept {
    if (!clocked_ || sample.start_time() == kNoTime) return Flow::ok;
    Clock& clock = *signals_.clock;
    for (;;) {
        switch (clock.wait_until(sample.start_time(), *signals_.stop_token)) {
            case ClockWait::due: {
                const std::int64_t lateness = clock.now() - sample.start_time();
                // relaxed: statistics; one render updates its own counters.
                if (lateness > 1'000'000) counters_.late.fetch_add(1, std::memory_order_relaxed);
                if (sample.stop_time() != kNoTime && lateness > sample.stop_time() - sample.start_time())
                    counters_.misses.fetch_add(1, std::memory_order_relaxed);
                lateness_.record(lateness);
                // relaxed CAS loop: statistics, possibly from two inputs' threads at once.
                std::int64_t seen = counters_.max_lateness.load(std::memory_order_relaxed);
                while (lateness > seen &&
                       !counters_.max_lateness.compare_exchange_weak(seen, lateness, std::memory_order_relaxed)) {
                }
                return Flow::ok;
            }
            case ClockWait::stopped:
                return Flow::stopped;
            case ClockWait::interrupted:
                // relaxed: see push().
                if (signals_.flushing->load(std::memory_order_relaxed)) return Flow::flushing;
                if (signals_.stop_token->stop_requested()) return Flow::stopped;
                if (!clock.running()) host_->park();  // paused: hold the sample until resumed
                break;
        }
    }
}

Flow Node::report_error(std::error_code code, std::string message) {
    host_->post({Event::Type::error, name_, code, std::move(message)});
    return Flow::error;
}

void Node::report_warning(std::string message) {
    host_->post({Event::Type::warning, name_, {}, std::move(message)});
}

void Node::count_drop() noexcept {
    // relaxed: statistics.
    counters_.drops.fetch_add(1, std::memory_order_relaxed);
}

bool Node::flushing() const noexcept {
    // relaxed: see push().
    return signals_.flushing->load(std::memory_order_relaxed);
}

const std::stop_token& Node::stop_token() const noexcept { return *signals_.stop_token; }
Clock& Node::clock() const noexcept { return *signals_.clock; }
std::int64_t Node::media_limit_ns() const noexcept {
    // relaxed: set on the control thread before the streaming threads start.
    return signals_.media_limit->load(std::memory_order_relaxed);
}

bool Node::limit_reached(const StreamLimit& limit, MediaTime next_start) const noexcept {
    const std::int64_t media = media_limit_ns();
    return (limit.num_buffers >= 0 && limit.produced >= std::uint64_t(limit.num_buffers)) ||
           (media >= 0 && next_start != kNoTime && next_start >= media);
}

}  // namespace sluice::engine
