#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Run the kernel's ynl-gen-c.py (from Debian's linux-source-6.12) on our
# netlink spec, validated against the kernel's genetlink schema.
#
#   ynl.sh uapi OUT.h             the uAPI header
#   ynl.sh kernel-source OUT.c    kernel policies/ops, for the policy check
#   ynl.sh check                  the committed uAPI header is up to date
#                                 and nl_policy.c matches the spec
set -euo pipefail

TOP=$(cd "$(dirname "$0")/.." && pwd)
KSRC=$(bash "$TOP/scripts/ksrc.sh")
SPEC=$TOP/Documentation/netlink/specs/vfio-mig.yaml
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
# ynl looks for the schema two folders above the spec, and for the top
# of a kernel tree (a MAINTAINERS file) to name the spec in its output.
mkdir -p "$W/Documentation/netlink/specs"
touch "$W/MAINTAINERS"
cp "$KSRC"/Documentation/netlink/genetlink*.yaml "$W/Documentation/netlink/"
cp "$SPEC" "$W/Documentation/netlink/specs/vfio-mig.yaml"
gen() {
	timeout 120 python3 "$KSRC/tools/net/ynl/ynl-gen-c.py" \
		--spec "$W/Documentation/netlink/specs/vfio-mig.yaml" "$@"
}

case "${1:-}" in
uapi)
	gen --mode uapi --header -o "$2.tmp"
	mv "$2.tmp" "$2" ;;
kernel-source)
	gen --mode kernel --source -o "$2" ;;
check)
	gen --mode uapi --header -o "$W/uapi.h"
	rc=0
	if diff -u "$TOP/include/uapi/linux/vfio_mig.h" "$W/uapi.h"; then
		echo "ok - include/uapi/linux/vfio_mig.h is ynl-gen's output for the spec"
	else
		echo "not ok - include/uapi/linux/vfio_mig.h is ynl-gen's output for the spec (run scripts/ynl.sh uapi include/uapi/linux/vfio_mig.h)"
		rc=1
	fi
	gen --mode kernel --source -o "$W/gen.c"
	python3 "$TOP/scripts/nl-policy-check.py" "$W/gen.c" \
		"$TOP/drivers/vfio-mig/nl_policy.c" || rc=1
	exit $rc ;;
*)
	echo "usage: $0 uapi OUT.h | kernel-source OUT.c | check" >&2
	exit 2 ;;
esac
