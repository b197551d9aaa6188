/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cgroup v2 device control: a BPF_PROG_TYPE_CGROUP_DEVICE program written
 * here instruction by instruction (no libbpf, no compiler), loaded and
 * attached with bpf(2).
 *
 * The rules are reduced as the v1 devices controller reduces its writes
 * (see the emulator below), so a v2 host grants exactly what a v1 host
 * would for the same config.
 */
#include "cgroup-internal.h"

#include <errno.h>
#include <linux/bpf.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cleanup.h"

/* Enough for the rules of any real config (each rule is at most 9). */
#define MAX_INSNS 4096

static int sys_bpf(int cmd, union bpf_attr *attr)
{
	long r = syscall(SYS_bpf, cmd, attr, sizeof(*attr));
	return r < 0 ? -errno : (int) r;
}

struct prog {
	struct bpf_insn *insn;
	size_t n;
};

static int emit(struct prog *p, struct bpf_insn i)
{
	if (p->n >= MAX_INSNS)
		return -E2BIG;
	p->insn[p->n++] = i;
	return 0;
}

#define INSN(c, d, s, o, i) \
	((struct bpf_insn){.code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i)})
#define LDX_W(dst, src, off)	   INSN(BPF_LDX | BPF_MEM | BPF_W, dst, src, off, 0)
#define ALU32_IMM(op, dst, imm)	   INSN(BPF_ALU | (op) | BPF_K, dst, 0, 0, imm)
#define MOV32_REG(dst, src)	   INSN(BPF_ALU | BPF_MOV | BPF_X, dst, src, 0, 0)
#define MOV64_IMM(dst, imm)	   INSN(BPF_ALU64 | BPF_MOV | BPF_K, dst, 0, 0, imm)
#define JMP_IMM(op, dst, imm, off) INSN(BPF_JMP | (op) | BPF_K, dst, 0, off, imm)
#define EXIT()			   INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)

static int access_bits(const char *s)
{
	int bits = 0;

	if (!s || !*s)
		s = "rwm";
	for (; *s; s++)
		bits |= *s == 'r'   ? BPF_DEVCG_ACC_READ
			: *s == 'w' ? BPF_DEVCG_ACC_WRITE
				    : BPF_DEVCG_ACC_MKNOD;
	return bits;
}

static int64_t num(json_object *d, const char *key)
{
	json_object *v;

	if (!json_object_object_get_ex(d, key, &v) || json_object_is_type(v, json_type_null))
		return -1;
	return json_object_get_int64(v);
}

/* ---------------------------------------------------------------- emulator */

/* The rule list is first reduced the way the v1 devices controller reduces
 * its writes: a default (allow or deny everything) plus exceptions of the
 * other polarity, an exception's accesses merged or removed per exact
 * (type, major, minor). The program then tests exceptions only, so its
 * answer does not depend on rule order, and v1 and v2 hosts agree. */

#define MAX_EXCEPTIONS 512

struct exception {
	int type;	      /* BPF_DEVCG_DEV_BLOCK / _CHAR */
	int64_t major, minor; /* -1: any */
	int access;
};

struct emulator {
	bool default_allow;
	struct exception ex[MAX_EXCEPTIONS];
	size_t n;
};

static struct exception *find(struct emulator *e, int type, int64_t major, int64_t minor)
{
	for (size_t i = 0; i < e->n; i++)
		if (e->ex[i].type == type && e->ex[i].major == major && e->ex[i].minor == minor)
			return &e->ex[i];
	return NULL;
}

static int apply_one(struct emulator *e, bool allow, int type, int64_t major, int64_t minor,
		     int access)
{
	struct exception *x = find(e, type, major, minor);

	/* Same polarity as the default: take accesses out of an exception. */
	if (allow == e->default_allow) {
		if (x) {
			x->access &= ~access;
			if (!x->access)
				*x = e->ex[--e->n];
		}
		return 0;
	}
	if (x) {
		x->access |= access;
		return 0;
	}
	if (e->n == MAX_EXCEPTIONS)
		return -E2BIG;
	e->ex[e->n++] = (struct exception){type, major, minor, access};
	return 0;
}

static int emulate(json_object *rules, struct emulator *e)
{
	/* A fresh cgroup allows everything (as under v1's root). */
	e->default_allow = true;
	e->n = 0;
	for (size_t i = 0; i < json_object_array_length(rules); i++) {
		json_object *d = json_object_array_get_idx(rules, i), *v;
		bool allow =
			json_object_object_get_ex(d, "allow", &v) && json_object_get_boolean(v);
		const char *type =
			json_object_object_get_ex(d, "type", &v) && json_object_get_string(v)
				? json_object_get_string(v)
				: "a";
		int acc = access_bits(json_object_object_get_ex(d, "access", &v)
					      ? json_object_get_string(v)
					      : NULL);
		int64_t major = num(d, "major"), minor = num(d, "minor");
		int r = 0;

		if (type[0] == 'a' && major < 0 && minor < 0 && acc == 7) {
			e->default_allow = allow;
			e->n = 0;
			continue;
		}
		if (type[0] != 'c')
			r = apply_one(e, allow, BPF_DEVCG_DEV_BLOCK, major, minor, acc);
		if (r == 0 && type[0] != 'b')
			r = apply_one(e, allow, BPF_DEVCG_DEV_CHAR, major, minor, acc);
		if (r < 0)
			return r;
	}
	return 0;
}

/* ---------------------------------------------------------------- program */

/* One exception: jumps past its block when it does not match. r2 type,
 * r3 access, r4 major, r5 minor; r1 is scratch. An allowed exception
 * (default deny) must grant every requested access; a denied one (default
 * allow) matches when it takes away any of them. */
static int emit_exception(struct prog *p, const struct exception *x, bool allow)
{
	size_t jumps[4], nj = 0;
	int r = 0;

	jumps[nj++] = p->n;
	r |= emit(p, JMP_IMM(BPF_JNE, BPF_REG_2, x->type, 0));
	r |= emit(p, MOV32_REG(BPF_REG_1, BPF_REG_3));
	if (allow) {
		r |= emit(p, ALU32_IMM(BPF_AND, BPF_REG_1, ~x->access & 7));
		jumps[nj++] = p->n;
		r |= emit(p, JMP_IMM(BPF_JNE, BPF_REG_1, 0, 0));
	} else {
		r |= emit(p, ALU32_IMM(BPF_AND, BPF_REG_1, x->access));
		jumps[nj++] = p->n;
		r |= emit(p, JMP_IMM(BPF_JEQ, BPF_REG_1, 0, 0));
	}
	if (x->major >= 0) {
		jumps[nj++] = p->n;
		r |= emit(p, JMP_IMM(BPF_JNE, BPF_REG_4, (int32_t) x->major, 0));
	}
	if (x->minor >= 0) {
		jumps[nj++] = p->n;
		r |= emit(p, JMP_IMM(BPF_JNE, BPF_REG_5, (int32_t) x->minor, 0));
	}
	r |= emit(p, MOV64_IMM(BPF_REG_0, allow ? 1 : 0));
	r |= emit(p, EXIT());
	if (r)
		return -E2BIG;
	for (size_t i = 0; i < nj; i++)
		p->insn[jumps[i]].off = (int16_t) (p->n - jumps[i] - 1);
	return 0;
}

static int build_program(json_object *rules, struct prog *p)
{
	struct emulator *e = malloc(sizeof(*e));
	int r;

	if (!e)
		return -ENOMEM;
	r = emulate(rules, e);
	if (r < 0)
		goto out;

	/* struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }:
	 * access_type is (access << 16) | type. */
	r |= emit(p, LDX_W(BPF_REG_2, BPF_REG_1, 0));
	r |= emit(p, ALU32_IMM(BPF_AND, BPF_REG_2, 0xffff));
	r |= emit(p, LDX_W(BPF_REG_3, BPF_REG_1, 0));
	r |= emit(p, ALU32_IMM(BPF_RSH, BPF_REG_3, 16));
	r |= emit(p, LDX_W(BPF_REG_4, BPF_REG_1, 4));
	r |= emit(p, LDX_W(BPF_REG_5, BPF_REG_1, 8));
	if (r) {
		r = -E2BIG;
		goto out;
	}
	for (size_t i = 0; i < e->n; i++) {
		r = emit_exception(p, &e->ex[i], !e->default_allow);
		if (r < 0)
			goto out;
	}
	r = emit(p, MOV64_IMM(BPF_REG_0, e->default_allow ? 1 : 0));
	if (r == 0)
		r = emit(p, EXIT());
out:
	free(e);
	return r;
}

static int load_program(const struct prog *p)
{
	static const char license[] = "Apache-2.0";
	union bpf_attr attr;

	memset(&attr, 0, sizeof(attr));
	attr.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
	attr.insns = (uint64_t) (uintptr_t) p->insn;
	attr.insn_cnt = (uint32_t) p->n;
	attr.license = (uint64_t) (uintptr_t) license;
	return sys_bpf(BPF_PROG_LOAD, &attr);
}

/* The ids of the device programs attached directly to `dirfd`. */
static int query(int dirfd, uint32_t *ids, uint32_t *n)
{
	union bpf_attr attr;
	int r;

	memset(&attr, 0, sizeof(attr));
	attr.query.target_fd = (uint32_t) dirfd;
	attr.query.attach_type = BPF_CGROUP_DEVICE;
	attr.query.prog_ids = (uint64_t) (uintptr_t) ids;
	attr.query.prog_cnt = *n;
	r = sys_bpf(BPF_PROG_QUERY, &attr);
	if (r < 0)
		return r;
	*n = attr.query.prog_cnt;
	return 0;
}

static int detach_id(int dirfd, uint32_t id)
{
	union bpf_attr attr;
	_cleanup_close_ int fd = -EBADF;

	memset(&attr, 0, sizeof(attr));
	attr.prog_id = id;
	fd = sys_bpf(BPF_PROG_GET_FD_BY_ID, &attr);
	if (fd < 0)
		return fd == -ENOENT ? 0 : fd;
	memset(&attr, 0, sizeof(attr));
	attr.target_fd = (uint32_t) dirfd;
	attr.attach_bpf_fd = (uint32_t) fd;
	attr.attach_type = BPF_CGROUP_DEVICE;
	int r = sys_bpf(BPF_PROG_DETACH, &attr);
	return r == -ENOENT ? 0 : r;
}

int cg_bpf_devices_detach_all(int dirfd)
{
	uint32_t ids[64], n = ELEMENTSOF(ids);
	int r;

	r = query(dirfd, ids, &n);
	if (r < 0)
		return r;
	for (uint32_t i = 0; i < n && i < ELEMENTSOF(ids); i++) {
		r = detach_id(dirfd, ids[i]);
		if (r < 0)
			return r;
	}
	return 0;
}

int cg_bpf_devices_replace(int dirfd, json_object *rules)
{
	uint32_t old[64], n_old = ELEMENTSOF(old);
	struct prog p = {0};
	_cleanup_close_ int prog_fd = -EBADF;
	union bpf_attr attr;
	int r;

	p.insn = calloc(MAX_INSNS, sizeof(*p.insn));
	if (!p.insn)
		return -ENOMEM;
	r = build_program(rules, &p);
	if (r == 0)
		r = prog_fd = load_program(&p);
	free(p.insn);
	if (r < 0)
		return r;

	/* Old programs are detached only after the new one is in place, so
	 * the cgroup is never without a device policy. */
	r = query(dirfd, old, &n_old);
	if (r < 0)
		return r;
	memset(&attr, 0, sizeof(attr));
	attr.target_fd = (uint32_t) dirfd;
	attr.attach_bpf_fd = (uint32_t) prog_fd;
	attr.attach_type = BPF_CGROUP_DEVICE;
	attr.attach_flags = BPF_F_ALLOW_MULTI;
	r = sys_bpf(BPF_PROG_ATTACH, &attr);
	if (r < 0)
		return r;
	for (uint32_t i = 0; i < n_old && i < ELEMENTSOF(old); i++) {
		r = detach_id(dirfd, old[i]);
		if (r < 0)
			return r;
	}
	return 0;
}
