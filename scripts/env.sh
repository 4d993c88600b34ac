# Sourced by every script that runs go: the Go toolchain Gatehouse is built
# and tested with. go1.27.3 clears the ten standard-library vulnerabilities
# govulncheck reports as reachable under the machine's go1.26.8 (see
# docs/supply-chain.md); the go command downloads it from the module proxy
# once (about 10 s) and keeps it in the module cache.
export PATH="$PATH:/usr/local/go/bin:$HOME/go/bin"
export GOTOOLCHAIN=go1.27.3
