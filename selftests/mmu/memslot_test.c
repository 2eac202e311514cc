// SPDX-License-Identifier: GPL-2.0
/*
 * KVMMU_SET_USER_MEMORY_REGION from userspace: KVM's rules for creating,
 * deleting, moving and re-flagging slots, and every bad input getting its
 * documented error. A failing call must change nothing: after each one the
 * test re-checks, through KVMMU_GPA_ACCESS, KVMMU_TRANSLATE and
 * KVMMU_GET_DIRTY_LOG, that exactly the slots it expects exist, at their
 * guest addresses, over their backing memory, with their flags.
 */
#include <stdint.h>
#include <sys/mman.h>

#include "../lib/ktap.h"
#include "../lib/kvmmu_util.h"

#define NPAGES 16
#define MAX_MODEL 8

static int vm;
static long pg;
static uint64_t gpa_limit;	/* 2^gpa_bits (KVMMU_GET_VM_INFO) */

/* What the test believes the VM's slots are. */
struct mslot {
	int live;
	uint32_t id;
	uint32_t flags;
	uint64_t gpa;
	uint64_t size;
	char *hva;
};
static struct mslot model[MAX_MODEL];

static struct mslot *model_find_gpa(uint64_t gpa)
{
	for (int i = 0; i < MAX_MODEL; i++)
		if (model[i].live && model[i].gpa <= gpa && gpa - model[i].gpa < model[i].size)
			return &model[i];
	return NULL;
}

static struct mslot *model_find_id(uint32_t id)
{
	for (int i = 0; i < MAX_MODEL; i++)
		if (model[i].live && model[i].id == id)
			return &model[i];
	return NULL;
}

/* The model's slot @id; a dummy if an earlier step failed to create it. */
static struct mslot *model_get(uint32_t id)
{
	static struct mslot dummy;
	struct mslot *s = model_find_id(id);

	return s ? s : &dummy;
}

static void model_add(uint32_t id, uint32_t flags, uint64_t gpa, uint64_t size, char *hva)
{
	for (int i = 0; i < MAX_MODEL; i++) {
		if (!model[i].live) {
			model[i] = (struct mslot){ 1, id, flags, gpa, size, hva };
			return;
		}
	}
	ktap_diag("model full");
	abort();
}

/* One guest read of 8 bytes at @gpa must give what the model says. */
static int probe(uint64_t gpa)
{
	struct mslot *s = model_find_gpa(gpa);
	uint64_t got = 0x1badull;
	int r = kvmmu_gpa_read(vm, gpa, &got, sizeof(got));

	if (!s) {
		/* Beyond the VM's guest physical space: EINVAL, else ENOENT. */
		int err = gpa + sizeof(got) > gpa_limit ? EINVAL : ENOENT;

		if (r == -1 && errno == err)
			return 1;
		ktap_diag("gpa 0x%llx: no slot expected, read gave %d (%s), expected %s",
			  (unsigned long long)gpa, r, r ? strerror(errno) : "success", strerror(err));
		return 0;
	}
	if (r) {
		ktap_diag("gpa 0x%llx (slot %u): read failed: %s", (unsigned long long)gpa, s->id,
			  strerror(errno));
		return 0;
	}
	uint64_t want;
	memcpy(&want, s->hva + (gpa - s->gpa), sizeof(want));
	if (got != want) {
		ktap_diag("gpa 0x%llx (slot %u): read 0x%llx, memory holds 0x%llx",
			  (unsigned long long)gpa, s->id, (unsigned long long)got,
			  (unsigned long long)want);
		return 0;
	}
	return 1;
}

/*
 * The VM's slots are exactly the model's: each slot reads its backing at
 * both ends, the pages around it are ENOENT unless another slot is there,
 * a write is refused exactly for read-only slots, and dirty logging is on
 * exactly for slots with the flag. @extra: one more gpa to probe.
 */
static int verify(uint64_t extra)
{
	uint64_t bitmap[NPAGES / 64 + 1];
	int ok = 1;

	for (int i = 0; i < MAX_MODEL; i++) {
		struct mslot *s = &model[i];

		if (!s->live)
			continue;
		ok &= probe(s->gpa);
		ok &= probe(s->gpa + s->size - 8);
		if (s->gpa >= (uint64_t)pg)
			ok &= probe(s->gpa - pg);
		ok &= probe(s->gpa + s->size);

		/* Writing back what is there: harmless unless refused. */
		uint64_t v;
		memcpy(&v, s->hva, sizeof(v));
		int r = kvmmu_gpa_write(vm, s->gpa, &v, sizeof(v));
		if (s->flags & KVMMU_MEM_READONLY) {
			if (!(r == -1 && errno == EPERM)) {
				ktap_diag("slot %u is read-only but a guest write gave %d (%s)", s->id,
					  r, r ? strerror(errno) : "success");
				ok = 0;
			}
		} else if (r) {
			ktap_diag("slot %u: guest write failed: %s", s->id, strerror(errno));
			ok = 0;
		}

		r = kvmmu_get_dirty_log(vm, s->id, bitmap);
		if (s->flags & KVMMU_MEM_LOG_DIRTY_PAGES) {
			if (r) {
				ktap_diag("slot %u logs dirty pages but GET_DIRTY_LOG failed: %s",
					  s->id, strerror(errno));
				ok = 0;
			}
		} else if (!(r == -1 && errno == ENOENT)) {
			ktap_diag("slot %u does not log but GET_DIRTY_LOG gave %d (%s)", s->id, r,
				  r ? strerror(errno) : "success");
			ok = 0;
		}
	}
	if (extra != UINT64_MAX)
		ok &= probe(extra & ~(uint64_t)7);
	return ok;
}

static int set_region_raw(const struct kvmmu_userspace_memory_region *r)
{
	return ioctl(vm, KVMMU_SET_USER_MEMORY_REGION, r);
}

static struct kvmmu_userspace_memory_region region(uint32_t id, uint32_t flags, uint64_t gpa,
						   uint64_t size, const void *hva)
{
	return kvmmu_region(id, flags, gpa, size, hva);
}

/*
 * A call that must fail with @err and change nothing. If it named a slot id
 * the model does not have, deleting that id must still fail (EINVAL): the
 * failed call did not create it.
 */
static void expect_fail(const struct kvmmu_userspace_memory_region *r, int err, const char *name)
{
	int ret = set_region_raw(r);
	int e = errno;
	int ok = ret == -1 && e == err;

	if (!ok)
		ktap_diag("got %d (%s), expected %s", ret, ret ? strerror(e) : "success",
			  strerror(err));
	ok &= verify(r->memory_size ? r->guest_phys_addr : UINT64_MAX);
	if (r->slot < KVMMU_MAX_MEMSLOTS && !model_find_id(r->slot)) {
		int d = kvmmu_delete_region(vm, r->slot);

		if (!(d == -1 && errno == EINVAL)) {
			ktap_diag("slot %u exists after the failed call", r->slot);
			ok = 0;
		}
	}
	ktap_result(ok, "%s", name);
}

static char *backing(unsigned char seed)
{
	char *p = mmap(NULL, NPAGES * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED) {
		ktap_diag("mmap: %s", strerror(errno));
		exit(1);
	}
	for (long i = 0; i < NPAGES * pg; i++)
		p[i] = (char)(seed + i * 7 + i / pg);
	return p;
}

int main(void)
{
	struct kvmmu_userspace_memory_region r;
	char *a, *b, *c, *d;
	int dev;

	pg = kvmmu_page_size(); /* before anything sized in pages */
	const uint64_t size = NPAGES * pg;
	const uint64_t g0 = 1ull << 30, g1 = g0 + 64 * size, g3 = g0 + 128 * size;
	const uint64_t g0_moved = g0 + 256 * size;
	ktap_start(57);
	dev = kvmmu_open();
	vm = dev >= 0 ? kvmmu_create_vm(dev) : -1;
	if (!ktap_result(vm >= 0, "create_vm")) {
		ktap_diag("%s", strerror(errno));
		return ktap_finish();
	}
	struct kvmmu_vm_info info;
	memset(&info, 0, sizeof(info));
	if (ioctl(vm, KVMMU_GET_VM_INFO, &info) || info.gpa_bits < 32 || info.gpa_bits > 63) {
		ktap_diag("GET_VM_INFO: %s, gpa_bits %u", strerror(errno), info.gpa_bits);
		info.gpa_bits = 48;
	}
	gpa_limit = 1ull << info.gpa_bits;
	a = backing(0x11);
	b = backing(0x22);
	c = backing(0x33);
	d = backing(0x44);

	/* Creation. */
	int ok = KTAP_EXPECT_ERRNO(kvmmu_set_region(vm, 0, 0, g0, size, a), 0, "create_slot0");
	if (ok)
		model_add(0, 0, g0, size, a);
	ok = kvmmu_set_region(vm, 1, 0, g1, size, b) == 0;
	if (ok)
		model_add(1, 0, g1, size, b);
	ktap_result(ok && verify(UINT64_MAX), "create_slot1_and_both_read_their_backing");
	/* Slots may share host memory: only guest physical ranges are exclusive. */
	ok = kvmmu_set_region(vm, 2, 0, g0 + size, pg, a) == 0;
	if (ok)
		model_add(2, 0, g0 + size, pg, a);
	ktap_result(ok && verify(UINT64_MAX), "adjacent_slot_sharing_host_memory_ok");
	ok = kvmmu_delete_region(vm, 2) == 0;
	if (ok)
		model_get(2)->live = 0;
	ktap_result(ok && verify(g0 + size), "delete_slot2_then_its_gpa_is_ENOENT");

	/* Overlap in guest physical space: EEXIST. */
	r = region(2, 0, g0 - 8 * pg, size, c);
	expect_fail(&r, EEXIST, "overlap_start_EEXIST");
	r = region(2, 0, g0 + size - pg, size, c);
	expect_fail(&r, EEXIST, "overlap_end_EEXIST");
	r = region(2, 0, g0 + pg, pg, c);
	expect_fail(&r, EEXIST, "overlap_contained_EEXIST");
	r = region(2, 0, g0 - pg, size + 2 * pg, c);
	expect_fail(&r, EEXIST, "overlap_containing_EEXIST");
	r = region(2, 0, g0, size, c);
	expect_fail(&r, EEXIST, "overlap_same_range_EEXIST");
	r = region(1, 0, g0 + 4 * pg, size, b);
	expect_fail(&r, EEXIST, "move_onto_other_slot_EEXIST");

	/* Alignment. */
	r = region(2, 0, g3 + 8, size, c);
	expect_fail(&r, EINVAL, "gpa_misaligned_EINVAL");
	r = region(2, 0, g3 + pg / 2, size, c);
	expect_fail(&r, EINVAL, "gpa_half_page_EINVAL");
	r = region(2, 0, g3, size + 8, c);
	expect_fail(&r, EINVAL, "size_misaligned_EINVAL");
	r = region(2, 0, g3, size, c + 8);
	expect_fail(&r, EINVAL, "hva_misaligned_EINVAL");

	/* Slot ids. */
	r = region(KVMMU_MAX_MEMSLOTS, 0, g3, size, c);
	expect_fail(&r, EINVAL, "slot_max_EINVAL");
	r = region(0xffffffffu, 0, g3, size, c);
	expect_fail(&r, EINVAL, "slot_u32_max_EINVAL");
	ok = kvmmu_set_region(vm, KVMMU_MAX_MEMSLOTS - 1, 0, g3, size, c) == 0;
	if (ok)
		model_add(KVMMU_MAX_MEMSLOTS - 1, 0, g3, size, c);
	ktap_result(ok && verify(UINT64_MAX), "slot_max_minus_1_ok");
	ok = kvmmu_delete_region(vm, KVMMU_MAX_MEMSLOTS - 1) == 0;
	if (ok)
		model_get(KVMMU_MAX_MEMSLOTS - 1)->live = 0;
	ktap_result(ok && verify(g3), "slot_max_minus_1_deleted");

	/* Flags and reserved fields. */
	r = region(2, 1u << 2, g3, size, c);
	expect_fail(&r, EINVAL, "flag_bit2_EINVAL");
	r = region(2, 1u << 31, g3, size, c);
	expect_fail(&r, EINVAL, "flag_bit31_EINVAL");
	r = region(2, 0, g3, size, c);
	r.reserved[0] = 1;
	expect_fail(&r, EINVAL, "reserved0_EINVAL");
	r = region(2, 0, g3, size, c);
	r.reserved[1] = 1ull << 63;
	expect_fail(&r, EINVAL, "reserved1_EINVAL");
	/* On an existing slot too: nothing else must be looked at first. */
	r = region(0, 0, g0, size, a);
	r.reserved[0] = 1;
	expect_fail(&r, EINVAL, "reserved_on_existing_slot_EINVAL");

	/* Host addresses. */
	r = region(2, 0, g3, size, NULL);
	r.userspace_addr = kvmmu_kernel_addr();
	expect_fail(&r, EINVAL, "kernel_userspace_addr_EINVAL");
	r = region(2, 0, g3, 2 * pg, NULL);
	r.userspace_addr = -(uint64_t)pg;
	expect_fail(&r, EINVAL, "hva_plus_size_wraps_EINVAL");

	/* Guest addresses. */
	r = region(2, 0, -(uint64_t)pg, 2 * pg, c);
	expect_fail(&r, EINVAL, "gpa_plus_size_wraps_EINVAL");
	r = region(2, 0, -(uint64_t)size, size, c);
	expect_fail(&r, EINVAL, "gpa_plus_size_is_2_64_EINVAL");
	/* No stage-2 format translates 2^63 (KVMMU_GET_VM_INFO's gpa_bits). */
	r = region(2, 0, 1ull << 63, size, c);
	expect_fail(&r, EINVAL, "gpa_beyond_stage2_EINVAL");
	r = region(2, 0, gpa_limit - pg, 2 * pg, c);
	expect_fail(&r, EINVAL, "gpa_crossing_gpa_bits_EINVAL");

	/* Deleting a slot that does not exist. */
	r = region(7, 0, g3, 0, c);
	expect_fail(&r, EINVAL, "delete_missing_slot_EINVAL");
	r = region(1, 0, 0, 0, NULL);
	r.slot = KVMMU_MAX_MEMSLOTS;
	expect_fail(&r, EINVAL, "delete_slot_max_EINVAL");

	/* An existing slot keeps its size, host range and read-only-ness. */
	r = region(0, 0, g0, size - pg, a);
	expect_fail(&r, EINVAL, "shrink_existing_EINVAL");
	r = region(0, 0, g0, size + pg, a);
	expect_fail(&r, EINVAL, "grow_existing_EINVAL");
	r = region(0, 0, g0, size, d);
	expect_fail(&r, EINVAL, "change_hva_EINVAL");
	r = region(0, KVMMU_MEM_READONLY, g0, size, a);
	expect_fail(&r, EINVAL, "set_readonly_on_existing_EINVAL");
	/* A move that also changes the host range is refused as a whole. */
	r = region(0, 0, g3, size, d);
	expect_fail(&r, EINVAL, "move_with_new_hva_EINVAL");

	/* A read-only slot. */
	ok = kvmmu_set_region(vm, 3, KVMMU_MEM_READONLY, g3, size, c) == 0;
	if (ok)
		model_add(3, KVMMU_MEM_READONLY, g3, size, c);
	ktap_result(ok && verify(UINT64_MAX), "create_readonly_slot (reads ok, write EPERM)");
	r = region(3, 0, g3, size, c);
	expect_fail(&r, EINVAL, "clear_readonly_EINVAL");
	r = region(3, KVMMU_MEM_READONLY | KVMMU_MEM_LOG_DIRTY_PAGES, g3, size, c);
	ok = set_region_raw(&r) == 0;
	if (ok)
		model_get(3)->flags = r.flags;
	ktap_result(ok && verify(UINT64_MAX), "readonly_slot_may_toggle_logging");

	/* Dirty logging may be toggled. */
	ok = kvmmu_set_region(vm, 0, KVMMU_MEM_LOG_DIRTY_PAGES, g0, size, a) == 0;
	if (ok)
		model_get(0)->flags = KVMMU_MEM_LOG_DIRTY_PAGES;
	ktap_result(ok && verify(UINT64_MAX), "log_dirty_on");
	ok = kvmmu_set_region(vm, 0, 0, g0, size, a) == 0;
	if (ok)
		model_get(0)->flags = 0;
	ktap_result(ok && verify(UINT64_MAX), "log_dirty_off");
	/* Setting what is already there changes nothing and succeeds. */
	ok = kvmmu_set_region(vm, 0, 0, g0, size, a) == 0;
	ktap_result(ok && verify(UINT64_MAX), "identical_update_ok");

	/* Moving: the old gpa is gone, the new one is the same memory. */
	struct kvmmu_translation t;
	uint64_t v = 0;
	ok = kvmmu_gpa_read(vm, g0 + 2 * pg, &v, sizeof(v)) == 0 &&
	     kvmmu_translate(vm, g0 + 2 * pg, &t) == 0 && t.mapped;
	ktap_result(ok, "slot0_mapped_before_move");
	ok = kvmmu_set_region(vm, 0, 0, g0_moved, size, a) == 0;
	if (ok)
		model_get(0)->gpa = g0_moved;
	ktap_result(ok && verify(g0) && verify(g0 + size - 8), "move_slot0 (old gpa ENOENT)");
	ok = kvmmu_translate(vm, g0 + 2 * pg, &t) == 0 && !t.mapped;
	ktap_result(ok, "moved_slot_old_gpa_unmapped");
	/* Same memory both ways: guest write -> process, process write -> guest. */
	uint64_t w = 0x0123456789abcdefull, got = 0;
	ok = kvmmu_gpa_write(vm, g0_moved + 3 * pg + 16, &w, sizeof(w)) == 0 &&
	     !memcmp(a + 3 * pg + 16, &w, sizeof(w));
	memset(a + 5 * pg, 0x6d, 64);
	ok &= kvmmu_gpa_read(vm, g0_moved + 5 * pg + 8, &got, sizeof(got)) == 0 &&
	      got == 0x6d6d6d6d6d6d6d6dull;
	ktap_result(ok, "moved_slot_is_the_same_memory");
	/* Moving back over the freed range works too. */
	ok = kvmmu_set_region(vm, 0, 0, g0, size, a) == 0;
	if (ok)
		model_get(0)->gpa = g0;
	ktap_result(ok && verify(g0_moved), "move_back");

	/* Bad argument pointers. */
	ok = KTAP_EXPECT_ERRNO(ioctl(vm, KVMMU_SET_USER_MEMORY_REGION, NULL), EFAULT,
			       "null_arg_EFAULT");
	ktap_result(verify(UINT64_MAX), "null_arg_changed_nothing");
	ok = KTAP_EXPECT_ERRNO(ioctl(vm, KVMMU_SET_USER_MEMORY_REGION, (void *)8), EFAULT,
			       "bad_ptr_EFAULT");
	char *two = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	munmap(two + pg, pg);
	r = region(4, 0, g3 + 64 * size, size, d);
	/* All of the struct but its last 8 bytes (reserved[1]) is readable. */
	memcpy(two + pg - (sizeof(r) - 8), &r, sizeof(r) - 8);
	int ret = ioctl(vm, KVMMU_SET_USER_MEMORY_REGION, two + pg - (sizeof(r) - 8));
	ok = ret == -1 && errno == EFAULT;
	if (!ok)
		ktap_diag("got %d (%s)", ret, ret ? strerror(errno) : "success");
	ktap_result(ok && verify(g3 + 64 * size) && kvmmu_delete_region(vm, 4) == -1 &&
		    errno == EINVAL, "straddling_unmapped_EFAULT_creates_nothing");

	/* Deleting everything: what the slots mapped goes with them. */
	ok = kvmmu_gpa_read(vm, g0, &v, sizeof(v)) == 0 && kvmmu_gpa_read(vm, g1, &v, sizeof(v)) == 0 &&
	     kvmmu_translate(vm, g0, &t) == 0 && t.mapped && kvmmu_translate(vm, g1, &t) == 0 &&
	     t.mapped;
	ktap_result(ok, "slots_mapped_before_delete");
	ok = 1;
	for (int i = 0; i < MAX_MODEL; i++) {
		if (!model[i].live)
			continue;
		ok &= kvmmu_delete_region(vm, model[i].id) == 0;
		model[i].live = 0;
	}
	ok &= verify(g0) && verify(g1) && verify(g3);
	ktap_result(ok, "delete_all");
	struct kvmmu_vm_stats st;
	ok = kvmmu_get_stats(vm, &st) == 0 && !st.leaves[0] && !st.leaves[1] && !st.leaves[2];
	if (!ok)
		ktap_diag("leaves %llu %llu %llu", (unsigned long long)st.leaves[0],
			  (unsigned long long)st.leaves[1], (unsigned long long)st.leaves[2]);
	ktap_result(ok, "no_leaves_left_after_delete");
	ok = kvmmu_translate(vm, g0, &t) == 0 && !t.mapped && kvmmu_translate(vm, g1, &t) == 0 &&
	     !t.mapped;
	ktap_result(ok, "deleted_slots_unmapped");
	/* A deleted id can be created again, elsewhere. */
	ok = kvmmu_set_region(vm, 0, 0, g1, size, b) == 0;
	if (ok)
		model_add(0, 0, g1, size, b);
	ktap_result(ok && verify(g0), "recreate_deleted_id");

	close(vm);
	close(dev);
	return ktap_finish();
}
