# SPDX-License-Identifier: GPL-2.0
# vfio-mig top-level Makefile.
#
#   make                 modules + migctl for the running kernel (or, when
#                        it has no headers, the newest supported one)
#   make KVER=6.12.117+deb12-amd64   modules for installed headers of KVER
#   make KDIR=/path/to/kernel/build  modules for a kernel build tree
#   make check           install deps, build for 6.1 and 6.12, lint, DKMS,
#                        unit tests, VM selftests on both kernels
#   make vm-test KVER=6.12.118+deb12-amd64 SUITE=regsync [TEST=log_test]
#                        one VM suite (or test) on one kernel, TAP shown
#   make check-debug     VM selftests on a KASAN + lockdep build of 6.12
#                        (first build ~30 min, cached), fail on any report
#   make demo            boot the test bed and show vfio-mig at work
#   make bench           benchmarks (ratios against same-run baselines)
#   make install         modules_install + migctl, man page, completion

VERSION := $(shell cat VERSION)
RUNNING := $(shell uname -r)

ifeq ($(origin KDIR),undefined)
ifeq ($(origin KVER),undefined)
KVER := $(if $(wildcard /lib/modules/$(RUNNING)/build/Makefile),$(RUNNING),\
	$(shell scripts/kernels.sh default 2>/dev/null))
endif
KDIR := /lib/modules/$(KVER)/build
endif

all: modules migctl

modules:
	@test -f $(KDIR)/Makefile || { \
	  echo "No kernel headers at $(KDIR)."; \
	  echo "Install linux-headers-$(KVER) (or run 'make deps'), or pass KVER= or KDIR=."; \
	  exit 1; }
	@echo "Building vfio-mig $(VERSION) modules for $(KDIR)"
	$(MAKE) -C $(KDIR) M=$(CURDIR) modules

modules_install: modules
	$(MAKE) -C $(KDIR) M=$(CURDIR) modules_install

migctl:
	$(MAKE) -C tools/migctl

install: modules_install
	$(MAKE) -C tools/migctl install

deps:
	scripts/deps.sh

check: deps
	scripts/check.sh

vm-test:
	@test -n "$(SUITE)" || { \
	  echo "usage: make vm-test KVER=<kver> SUITE=<suite> [TEST=<name>]"; \
	  exit 2; }
	scripts/vm-test.sh "$(KVER)" "$(SUITE)" "$(TEST)"

check-debug: deps
	scripts/check-debug.sh

demo: deps
	scripts/demo.sh

bench: deps
	scripts/bench.sh

lint: deps
	scripts/lint.sh

clean:
	-$(MAKE) -C $(KDIR) M=$(CURDIR) clean 2>/dev/null
	$(MAKE) -C tools/migctl clean
	rm -rf build

.PHONY: all modules modules_install migctl install deps check check-debug \
	vm-test \
	demo bench \
	lint clean
