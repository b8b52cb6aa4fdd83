#!/bin/bash
# hot-symbols.sh [BINARY]: writes link/console-hot.txt, the functions a release
# console runs while it starts on ../shared/bench/udf10k.lua with the
# in-process sandbox, is typed into and quits (callgrind in tmux, 160x45).
# Needs valgrind and tmux; takes about a minute.
set -eu
export LC_ALL=C
cd "$(dirname "$0")/.."
BIN=$(realpath "${1:-target/release/asudf}")
R=$(mktemp -d); S=hot$$
mkdir -p "$R"/data "$R"/config "$R"/home
tmux -L $S -f /dev/null new-session -d -x 160 -y 45 -e XDG_DATA_HOME="$R"/data \
  -e XDG_CONFIG_HOME="$R"/config -e HOME="$R"/home -e LANG=C.UTF-8 \
  "valgrind --tool=callgrind --demangle=no --callgrind-out-file=$R/cg.out $BIN $PWD/../shared/bench/udf10k.lua"
sleep 25
for _ in $(seq 15); do tmux -L $S send-keys -l x; sleep 0.3; done
for key in BSpace Enter Up; do tmux -L $S send-keys $key; sleep 0.3; done
sleep 3; tmux -L $S send-keys C-c; sleep 3; tmux -L $S send-keys y; sleep 8
tmux -L $S kill-server 2>/dev/null || true
# Function names callgrind saw, kept where the binary defines them.
grep -hE '^c?fn=\([0-9]+\) ' "$R"/cg.out* | sed -E 's/^c?fn=\([0-9]+\) //' | sort -u > "$R"/ran
nm --defined-only "$BIN" | awk '$2 ~ /^[tTwW]$/ {print $3}' | sort -u > "$R"/defined
comm -12 "$R"/ran "$R"/defined > link/console-hot.txt
wc -l link/console-hot.txt
rm -rf "$R"
