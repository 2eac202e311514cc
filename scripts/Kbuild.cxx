# SPDX-License-Identifier: GPL-2.0
# Kbuild support for freestanding C++ objects (included from ../Kbuild).
#
# C++ objects are compiled with the kernel's own C flags for this object
# (kbuild's _c_flags and the module flags), minus what the C++ compiler
# itself rejects as C-only, minus the kernel include paths and forced
# includes, plus the freestanding C++ flags. The C++ compiler must be the
# C++ sibling of $(CC) at the same version. Objects get objtool and the
# mcount recording step exactly like C objects, and an object carrying a
# global constructor or unwind/exception tables is rejected.

# --- the compiler -----------------------------------------------------------
KVMMU_CXX ?= $(shell printf '%s\n' '$(CC)' | sed -e 's/gcc\(-[0-9][0-9.]*\)\{0,1\}$$/g++\1/')

kvmmu-cc-version = $(shell $(CC) -dumpfullversion 2>/dev/null)
kvmmu-cxx-version = $(shell $(KVMMU_CXX) -dumpfullversion 2>/dev/null)
kvmmu-cxx-check = $(if $(filter-out $(kvmmu-cc-version),$(kvmmu-cxx-version))$(if $(kvmmu-cxx-version),,missing),\
	$(error kvmmu: the C++ compiler '$(KVMMU_CXX)' (version '$(kvmmu-cxx-version)') \
	must be the C++ sibling of CC '$(CC)' at the same version '$(kvmmu-cc-version)'; \
	install it or set KVMMU_CXX))

# --- flags ------------------------------------------------------------------
# Evaluated once, on first use (memoised): the global C flags the C++
# compiler reports as "valid for C/ObjC but not for C++".
kvmmu-c-only = $(eval kvmmu-c-only := $(shell $(CONFIG_SHELL) $(src)/scripts/c-only-flags.sh \
	$(KVMMU_CXX) $(subst -I ,-I,$(strip $(KBUILD_CPPFLAGS) $(KBUILD_CFLAGS) \
	$(KBUILD_CFLAGS_MODULE) $(ccflags-y)))))$(kvmmu-c-only)
kvmmu-cxx-isystem = $(eval kvmmu-cxx-isystem := $(shell $(KVMMU_CXX) -print-file-name=include))$(kvmmu-cxx-isystem)

kvmmu-cxx-flags = -nostdinc -isystem $(kvmmu-cxx-isystem) \
	$(filter-out -I% $(kvmmu-c-only),$(subst -I ,-I,$(strip $(_c_flags) $(modkern_cflags)))) \
	$(basename_flags) $(modname_flags) \
	-I$(src)/include -I$(obj)/generated \
	-std=gnu++17 -ffreestanding -nostdinc++ -fno-exceptions -fno-rtti \
	-fno-threadsafe-statics -fno-use-cxa-atexit -fcheck-new \
	-fno-asynchronous-unwind-tables -fno-unwind-tables \
	-Werror=unused-result $(kvmmu-cxx-asan-globals) $(kvmmu-cxx-atomics) \
	-faligned-new=$(kvmmu-kmalloc-minalign)

# new-expressions for types aligned above what kmalloc guarantees must use
# the aligned operator new: tell the compiler the kernel's real minimum
# (g++ assumes 16, x86_64 kmalloc guarantees 8), read from the generated
# layout header, which every C++ object depends on.
kvmmu-kmalloc-minalign = $(shell sed -n 's/^\#define KVMMU_KMALLOC_MINALIGN \([0-9]*\).*/\1/p' \
	$(obj)/generated/kvmmu_layout.h)

# kvmmu's C++ atomics are compiler builtins (kernel C uses its own asm).
# Where GCC would turn them into calls to libgcc's out-of-line helpers
# (arm64 -moutline-atomics), which no kernel exports, inline them.
kvmmu-cxx-atomics = $(eval kvmmu-cxx-atomics := $(call cc-option,-mno-outline-atomics))$(kvmmu-cxx-atomics)

# KASAN registers instrumented globals from a constructor. C++ objects must
# carry none (a stock kernel would never run it), so C++ globals go without
# KASAN redzones; heap and stack accesses stay instrumented.
kvmmu-cxx-asan-globals = $(if $(CONFIG_KASAN_GENERIC),--param asan-globals=0)

# --- rules ------------------------------------------------------------------
quiet_cmd_cxx_o_cpp = CXX $(quiet_modtag) $@
      cmd_cxx_o_cpp = $(kvmmu-cxx-check)$(KVMMU_CXX) -Wp,-MMD,$(depfile) \
		$(kvmmu-cxx-flags) -c -o $@ $< $(cmd_objtool)

# Global constructors never run in these kernels (CONFIG_CONSTRUCTORS is
# off) and unwind/exception tables have no consumer: refuse both.
quiet_cmd_kvmmu_sections = CHKSEC  $@
      cmd_kvmmu_sections = if $(READELF) -SW $@ | \
		grep -qE '\.(init_array|ctors|eh_frame|gcc_except_table)'; then \
		echo "$@: has a global constructor or unwind tables:" >&2; \
		$(READELF) -SW $@ | grep -E '\.(init_array|ctors|eh_frame|gcc_except_table)' >&2; \
		rm -f $@; exit 1; fi

define rule_cxx_o_cpp
	$(call cmd_and_fixdep,cxx_o_cpp)
	$(call cmd,kvmmu_sections)
	$(call cmd,gen_objtooldep)
	$(call cmd,record_mcount)
endef

$(obj)/%.o: $(src)/%.cpp $(recordmcount_source) FORCE
	$(call if_changed_rule,cxx_o_cpp)

# --- generated layout header --------------------------------------------------
$(obj)/generated/kvmmu_layout.h: $(obj)/kernel/layout.s FORCE
	$(call filechk,offsets,KVMMU_LAYOUT_H)

kvmmu-all-objs := $(addprefix $(obj)/,$(kvmmu-y) $(kvmmu_kunit-y))
$(kvmmu-all-objs): $(obj)/generated/kvmmu_layout.h
targets += kernel/layout.s $(kvmmu-y) $(kvmmu_kunit-y)
