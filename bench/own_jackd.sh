# Sourced by the bench's JACK tests: `own_jackd NAME` starts a jackd of the test's own (dummy
# driver, 48 kHz, 64-frame periods; no sound card, no D-Bus device reservation) named NAME-PID,
# points JACK_DEFAULT_SERVER at it, waits until it answers, and on exit ends it and removes
# $dir, a temporary directory it makes (jackd's log is $dir/jackd.log).
own_jackd() {
  dir=$(mktemp -d)
  local server=$1-$$
  JACK_NO_AUDIO_RESERVATION=1 jackd -n "$server" -d dummy -r 48000 -p 64 > "$dir/jackd.log" 2>&1 &
  jackd=$!
  trap 'kill "$jackd" 2>/dev/null; wait "$jackd" 2>/dev/null; rm -rf "$dir"' EXIT
  export JACK_DEFAULT_SERVER=$server
  for _ in $(seq 100); do jack_lsp > /dev/null 2>&1 && break; sleep 0.1; done
}
