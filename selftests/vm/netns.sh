#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# "Two hosts in one guest": network namespaces hosta and hostb joined by a
# veth pair (veth-a in hosta, 10.99.0.1/24 and fd99::1/64; veth-b in hostb,
# 10.99.0.2/24 and fd99::2/64),
# loopback up in both. Needs iproute2's ip (busybox's has no netns),
# which mkinitramfs.sh puts in /usr/sbin.
#
#   . netns.sh; hosts_up / hosts_down     (guest-lib.sh sources it)
#   netns.sh up | down                    (from tests)
#
# hosts_up starts from scratch (it runs hosts_down first); hosts_down
# removes both namespaces, and the veth pair with them, and succeeds when
# there is nothing to remove.

HOSTS_NS="hosta hostb"
# The guest's busybox sh runs its own ip applet whatever PATH says: name
# iproute2's by its path.
IPROUTE2=/usr/sbin/ip
[ -x "$IPROUTE2" ] || IPROUTE2=ip

hosts_down() {
	for ns in $HOSTS_NS; do
		[ -e "/run/netns/$ns" ] || continue
		$IPROUTE2 netns del "$ns" || { echo "ip netns del $ns failed"; return 1; }
	done
	return 0
}

hosts_up() {
	hosts_down || return 1
	$IPROUTE2 -V 2>/dev/null | grep -q iproute2 ||
		{ echo "hosts_up: ip is not iproute2's"; return 1; }
	modprobe veth 2>/dev/null
	if ! { $IPROUTE2 netns add hosta && $IPROUTE2 netns add hostb &&
	       $IPROUTE2 link add veth-a netns hosta type veth \
			peer name veth-b netns hostb &&
	       $IPROUTE2 -n hosta addr add 10.99.0.1/24 dev veth-a &&
	       $IPROUTE2 -n hostb addr add 10.99.0.2/24 dev veth-b &&
	       $IPROUTE2 -n hosta addr add fd99::1/64 dev veth-a nodad &&
	       $IPROUTE2 -n hostb addr add fd99::2/64 dev veth-b nodad &&
	       $IPROUTE2 -n hosta link set lo up &&
	       $IPROUTE2 -n hostb link set lo up &&
	       $IPROUTE2 -n hosta link set veth-a up &&
	       $IPROUTE2 -n hostb link set veth-b up; }; then
		echo "hosts_up: setting up hosta/hostb failed"
		hosts_down
		return 1
	fi
}

case "${0##*/}" in
netns.sh)
	case "${1:-}" in
	up) hosts_up ;;
	down) hosts_down ;;
	*) echo "usage: netns.sh up|down" >&2; exit 2 ;;
	esac
	;;
esac
