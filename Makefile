# SPDX-License-Identifier: GPL-2.0
# kvmmu: out-of-tree module build (Kbuild has the objects) and the project's
# entry points. `make` builds kvmmu.ko against KDIR the standard way:
#   make KDIR=/path/to/kernel/build [ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu-]

KDIR ?= /lib/modules/$(shell uname -r)/build

all: modules

modules:
	$(MAKE) -C $(KDIR) M=$(CURDIR) modules

clean:
	$(MAKE) -C $(KDIR) M=$(CURDIR) clean
	rm -rf generated

# Whole test suite: host tests, stock kernels, KUnit debug kernels.
check:
	bash scripts/check.sh $(if $(filter command line,$(origin ARCH)),--arch $(ARCH))

# Main job: boot the stock kernel in QEMU, load kvmmu, run the demo VMM.
demo:
	bash scripts/demo.sh

# The same with a real KVM (arm64, patched: docs/kvm.md) whose vCPU faults
# its memory in through kvmmu's stage-2 tables.
demo-kvm:
	DEMO_LAYER=kvm bash scripts/demo.sh

bench:
	bash scripts/bench.sh

host-test:
	bash scripts/host.sh

.PHONY: all modules clean check demo demo-kvm bench host-test
