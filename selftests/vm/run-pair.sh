#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Boot two test bed guests, "host a" and "host b", joined by a network.
#
#   run-pair.sh KVER INITRD OUTDIR [test]
#   run-pair.sh KVER_A,KVER_B INITRD_A,INITRD_B OUTDIR [test]
#
# The second form boots guest a and guest b on different kernels.
# (MODE test only, so far: each guest runs its tests, TAP on its ttyS1.)
# Each guest is run.sh's machine (machine.sh) plus a virtio-net NIC; the
# two NICs are joined by QEMU's socket netdev over loopback (a listens on a
# free port of 127.0.0.1, b connects). The kernel command lines carry
# vmig.host=a / vmig.host=b: the guests' eth0 are 10.98.0.1/24 and
# 10.98.0.2/24 (guest-lib.sh). OUTDIR/a and OUTDIR/b each get what run.sh
# leaves in its OUTDIR (console.log, guest.log, qemu.log, wall_seconds,
# qemu_rc), so 'scripts/tap.py vm "KVER a" OUTDIR/a' reads them; both
# guests' NVMe namespaces are backed by the one file OUTDIR/nvme-ns.img;
# OUTDIR/wall_seconds is the pair's.
# VMIG_VM_TIMEOUT (seconds, default 1200) bounds each guest; when a guest
# never reaches init, the pair is booted again (machine.sh:
# VMIG_BOOT_TIMEOUT, VMIG_BOOT_TRIES; OUTDIR/a|b/boot_retries);
# VMIG_SUITES="s1 s2" runs only those suites (default: all);
# VMIG_QUIET=1 does not show the guests' output live.
set -uo pipefail

KVER=$1 INITRD=$2 OUT=$3 MODE=${4:-test}
LIMIT=${VMIG_VM_TIMEOUT:-1200}
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/machine.sh"

if [ "$MODE" != test ]; then
	echo "run-pair.sh: mode $MODE: only test is supported (a shell: run.sh)" >&2
	exit 2
fi

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
SUITES=${VMIG_SUITES:-}
SUITES=${SUITES// /,}
declare -A PID TPID	# per guest: its subshell, its timeout(1) wrapper
# Both guests' NVMe namespaces are one file, as two hosts' VFs would reach
# one network volume: what guest a writes, guest b reads.
VM_NVME_IMG=$OUT/nvme-ns.img
vm_nvme_image "$VM_NVME_IMG" || exit 1

# Stop both guests: their timeout(1) wrappers pass SIGTERM on to QEMU;
# whatever still runs 10 s later is killed.
stop_guests() {
	local h pid alive
	for h in a b; do
		pid=$(cat "$OUT/$h/timeout.pid" 2>/dev/null) &&
			kill -TERM "$pid" 2>/dev/null
	done
	for _ in $(seq 100); do
		alive=0
		for h in a b; do
			pid=$(cat "$OUT/$h/timeout.pid" 2>/dev/null) &&
				kill -0 "$pid" 2>/dev/null && alive=1
		done
		[ "$alive" = 0 ] && break
		sleep 0.1
	done
	for h in a b; do
		# QEMU's own pid, if it outlived its wrapper (and is still ours).
		pid=$(cat "$OUT/$h/qemu.pid" 2>/dev/null) &&
			tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null |
			grep -qF "$OUT/$h/" && kill -KILL "$pid" 2>/dev/null
		rm -f "$OUT/$h/timeout.pid" "$OUT/$h/qemu.pid"
	done
	# shellcheck disable=SC2086 # a list of pids
	[ -n "${tails:-}" ] && kill $tails 2>/dev/null
	tails=
}

# ... whatever ends this script.
cleanup() {
	trap - EXIT INT TERM
	stop_guests
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A TCP port of 127.0.0.1 nobody listens on now (a race remains: guest a
# is started again on another one when its QEMU cannot bind it).
free_port() {
	python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# Does process $1 (QEMU) listen on 127.0.0.1:$2? Read from /proc/net/tcp
# and the process's fds: no probe connection, which QEMU's socket netdev
# would take for its peer; and not some other process on that port.
listening() {
	local hex inode fd
	hex=$(printf '%04X' "$2")
	for inode in $(awk -v a="0100007F:$hex" \
			'$2 == a && $3 == "00000000:0000" && $4 == "0A" { print $10 }' \
			/proc/net/tcp); do
		for fd in "/proc/$1/fd"/*; do
			[ "$(readlink "$fd" 2>/dev/null)" = "socket:[$inode]" ] &&
				return 0
		done
	done
	return 1
}

# boot HOST NETDEV: start one guest in the background.
boot() {
	local h=$1 netdev=$2 d=$OUT/$1 mac
	mkdir -p "$d"
	rm -f "$d/console.log" "$d/guest.log" "$d/wall_seconds" "$d/qemu_rc" \
		"$d/timeout.pid" "$d/qemu.pid"
	: > "$d/guest.log"
	[ "$h" = a ] && mac=52:54:00:98:00:01 || mac=52:54:00:98:00:02
	local k=${KVER%%,*} i=${INITRD%%,*}
	if [ "$h" = b ]; then
		k=${KVER##*,}
		i=${INITRD##*,}
	fi
	vm_machine "$k" "$i" "$d" "$MODE" "vmig.host=$h" \
		${SUITES:+"vmig.suites=$SUITES"}
	QEMU+=(-serial "file:$d/guest.log" -pidfile "$d/qemu.pid"
	       -netdev "socket,id=n0,$netdev"
	       -device "virtio-net-pci,netdev=n0,mac=$mac,addr=06.0")
	(
		start=$(date +%s.%N)
		timeout -k 10 "$LIMIT" "${QEMU[@]}" </dev/null \
			2>"$d/qemu.log" &
		echo $! > "$d/timeout.pid"
		wait $!
		rc=$?
		end=$(date +%s.%N)
		rm -f "$d/timeout.pid"
		awk -v s="$start" -v e="$end" 'BEGIN { printf "%.1f\n", e - s }' \
			> "$d/wall_seconds"
		echo "$rc" > "$d/qemu_rc"
	) &
	PID[$h]=$!
	# Until the subshell has written it, cleanup cannot find the wrapper.
	for _ in $(seq 50); do
		[ -s "$d/timeout.pid" ] && break
		sleep 0.1
	done
	TPID[$h]=$(cat "$d/timeout.pid" 2>/dev/null)
}

# boot_pair: guest a, listening on a free port, then guest b, connecting.
boot_pair() {
	local p
	port=
	for _ in 1 2 3 4 5; do
		p=$(free_port) || break
		boot a "listen=127.0.0.1:$p"
		for _ in $(seq 300); do
			qpid=$(cat "$OUT/a/qemu.pid" 2>/dev/null) &&
				listening "$qpid" "$p" && { port=$p; break; }
			kill -0 "${PID[a]}" 2>/dev/null || break
			sleep 0.1
		done
		[ -n "$port" ] && break
		[ -n "${TPID[a]}" ] && kill -TERM "${TPID[a]}" 2>/dev/null
		wait "${PID[a]}"
		grep -q 'in use' "$OUT/a/qemu.log" || break
	done
	if [ -z "$port" ]; then
		echo "run-pair.sh: guest a never listened (see $OUT/a/qemu.log)" >&2
		return 1
	fi
	echo "$port" > "$OUT/port"
	boot b "connect=127.0.0.1:$port"
}

start=$(date +%s.%N)
rm -f "$OUT"/[ab]/*.boot*.log "$OUT"/[ab]/boot_retries
tails=
# Both guests must reach init (machine.sh); if one does not, both are
# booted again, so that the pair starts together.
for ((n = 1; ; n++)); do
	boot_pair || exit 1
	if [ "${VMIG_QUIET:-0}" != 1 ]; then
		for h in a b; do
			tail --pid="${TPID[$h]}" -s 0.2 -n +1 -F \
				"$OUT/$h/guest.log" 2>/dev/null |
				grep --line-buffered -v '^=== VMIG-' |
				sed -u "s/^/$h| /" &
			tails+=" $!"
		done
	fi
	declare -A UP=()
	for h in a b; do
		vm_wait_booted "$OUT/$h" "${PID[$h]}" && UP[$h]=1
	done
	[ -n "${UP[a]:-}" ] && [ -n "${UP[b]:-}" ] && break
	stop_guests
	wait "${PID[a]}" "${PID[b]}"
	[ "$n" -lt "${VMIG_BOOT_TRIES:-2}" ] || break
	for h in a b; do
		if [ -n "${UP[$h]:-}" ]; then
			vm_keep_failed_boot "$OUT/$h" "$n" \
				"reached init; stopped, as its peer did not"
		else
			vm_keep_failed_boot "$OUT/$h" "$n"
		fi
	done
done
wait "${PID[a]}"
wait "${PID[b]}"
end=$(date +%s.%N)
# shellcheck disable=SC2086 # a list of pids
[ -n "$tails" ] && wait $tails 2>/dev/null
tails=
awk -v s="$start" -v e="$end" 'BEGIN { printf "%.1f\n", e - s }' \
	> "$OUT/wall_seconds"
exit 0
