/* SPDX-License-Identifier: MIT */
/*
 * libbpf-wasm.h: the libbpf API for a WebAssembly (wasm32-wasi) guest, as ecc
 * ships it. Written for ecc; it keeps the names of the wasm-bpf guest SDK's
 * header of the same name (its host functions, the skeleton structs, the
 * bpf_buffer calls), so that a program and skeleton written for either header
 * compiles against the other.
 *
 * The guest cannot make BPF system calls: the host (a wasm-bpf runtime, or
 * `ecc run` on a .wasm) does them for it through the six functions of the
 * import module "wasm_bpf" declared below. A loaded object is known to the
 * guest only by the 64-bit handle the host gave it; 0 means failure.
 */
#ifndef _LIBBPF_WASM_H
#define _LIBBPF_WASM_H

#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The host's handle of a loaded BPF object. */
typedef uint64_t bpf_object_skel;

#define LIBBPF_WASM_IMPORT(name) \
    __attribute__((import_module("wasm_bpf"), import_name(name)))

/* Load (CO-RE relocate, verify) the ELF object in obj_buf; its handle, or 0. */
LIBBPF_WASM_IMPORT("wasm_load_bpf_object")
bpf_object_skel wasm_load_bpf_object(const void *obj_buf, int obj_buf_sz);

/* Attach the program `name` of obj, where its section says or to attach_target
 * (a cgroup path, an interface name...) when not NULL; < 0 on failure. */
LIBBPF_WASM_IMPORT("wasm_attach_bpf_program")
int wasm_attach_bpf_program(bpf_object_skel obj, const char *name, const char *attach_target);

/* Wait up to timeout_ms for samples of the ring or perf buffer map fd; for each,
 * copy it into data (max_size bytes at most) and call the guest's function at
 * table index sample_func with (ctx, data, size). */
LIBBPF_WASM_IMPORT("wasm_bpf_buffer_poll")
int wasm_bpf_buffer_poll(bpf_object_skel program, int fd, int32_t sample_func, uint32_t ctx,
                         char *data, int max_size, int timeout_ms);

/* The fd of the map `name` of obj, or < 0. */
LIBBPF_WASM_IMPORT("wasm_bpf_map_fd_by_name")
int wasm_bpf_map_fd_by_name(bpf_object_skel obj, const char *name);

/* A map command (enum bpf_cmd) on map fd; key, value and next_key are guest memory. */
LIBBPF_WASM_IMPORT("wasm_bpf_map_operate")
int wasm_bpf_map_operate(int fd, int cmd, void *key, void *value, void *next_key,
                         uint64_t flags);

/* Detach every program of obj and unload it. */
LIBBPF_WASM_IMPORT("wasm_close_bpf_object")
int wasm_close_bpf_object(bpf_object_skel obj);

#undef LIBBPF_WASM_IMPORT

/* The host runs on Linux and answers with -errno as Linux numbers them; the
 * guest's errno.h is WASI's, which numbers them otherwise (EINTR is 4 on Linux,
 * 27 in WASI). So each answer is translated, and `err == -EINTR` means what it
 * says. Numbers not listed pass unchanged. */
static inline int libbpf_wasm__errno(int ret)
{
    static const struct { int linux_errno, guest_errno; } table[] = {
        {1, EPERM}, {2, ENOENT}, {3, ESRCH}, {4, EINTR}, {5, EIO}, {7, E2BIG},
        {9, EBADF}, {11, EAGAIN}, {12, ENOMEM}, {13, EACCES}, {14, EFAULT},
        {16, EBUSY}, {17, EEXIST}, {19, ENODEV}, {22, EINVAL}, {24, EMFILE},
        {28, ENOSPC}, {34, ERANGE}, {38, ENOSYS}, {95, EOPNOTSUPP}, {110, ETIMEDOUT},
    };

    if (ret >= 0)
        return ret;
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
        if (-ret == table[i].linux_errno)
            return -table[i].guest_errno;
    return ret;
}

/* Update flags of bpf_map_update_elem (linux/bpf.h). */
enum {
    BPF_ANY = 0,
    BPF_NOEXIST = 1,
    BPF_EXIST = 2,
    BPF_F_LOCK = 4,
};

/* The kernel's command numbers; the host accepts the map commands only. */
enum bpf_cmd {
    BPF_MAP_LOOKUP_ELEM = 1,
    BPF_MAP_UPDATE_ELEM = 2,
    BPF_MAP_DELETE_ELEM = 3,
    BPF_MAP_GET_NEXT_KEY = 4,
};

/* linux/bpf.h's numbering, for programs that compare or print them. */
enum bpf_map_type {
    BPF_MAP_TYPE_UNSPEC,
    BPF_MAP_TYPE_HASH,
    BPF_MAP_TYPE_ARRAY,
    BPF_MAP_TYPE_PROG_ARRAY,
    BPF_MAP_TYPE_PERF_EVENT_ARRAY,
    BPF_MAP_TYPE_PERCPU_HASH,
    BPF_MAP_TYPE_PERCPU_ARRAY,
    BPF_MAP_TYPE_STACK_TRACE,
    BPF_MAP_TYPE_CGROUP_ARRAY,
    BPF_MAP_TYPE_LRU_HASH,
    BPF_MAP_TYPE_LRU_PERCPU_HASH,
    BPF_MAP_TYPE_LPM_TRIE,
    BPF_MAP_TYPE_ARRAY_OF_MAPS,
    BPF_MAP_TYPE_HASH_OF_MAPS,
    BPF_MAP_TYPE_DEVMAP,
    BPF_MAP_TYPE_SOCKMAP,
    BPF_MAP_TYPE_CPUMAP,
    BPF_MAP_TYPE_XSKMAP,
    BPF_MAP_TYPE_SOCKHASH,
    BPF_MAP_TYPE_CGROUP_STORAGE_DEPRECATED,
    BPF_MAP_TYPE_CGROUP_STORAGE = BPF_MAP_TYPE_CGROUP_STORAGE_DEPRECATED,
    BPF_MAP_TYPE_REUSEPORT_SOCKARRAY,
    BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE_DEPRECATED,
    BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE = BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE_DEPRECATED,
    BPF_MAP_TYPE_QUEUE,
    BPF_MAP_TYPE_STACK,
    BPF_MAP_TYPE_SK_STORAGE,
    BPF_MAP_TYPE_DEVMAP_HASH,
    BPF_MAP_TYPE_STRUCT_OPS,
    BPF_MAP_TYPE_RINGBUF,
    BPF_MAP_TYPE_INODE_STORAGE,
    BPF_MAP_TYPE_TASK_STORAGE,
    BPF_MAP_TYPE_BLOOM_FILTER,
    BPF_MAP_TYPE_USER_RINGBUF,
    BPF_MAP_TYPE_CGRP_STORAGE,
};

enum bpf_prog_type {
    BPF_PROG_TYPE_UNSPEC,
    BPF_PROG_TYPE_SOCKET_FILTER,
    BPF_PROG_TYPE_KPROBE,
    BPF_PROG_TYPE_SCHED_CLS,
    BPF_PROG_TYPE_SCHED_ACT,
    BPF_PROG_TYPE_TRACEPOINT,
    BPF_PROG_TYPE_XDP,
    BPF_PROG_TYPE_PERF_EVENT,
    BPF_PROG_TYPE_CGROUP_SKB,
    BPF_PROG_TYPE_CGROUP_SOCK,
    BPF_PROG_TYPE_LWT_IN,
    BPF_PROG_TYPE_LWT_OUT,
    BPF_PROG_TYPE_LWT_XMIT,
    BPF_PROG_TYPE_SOCK_OPS,
    BPF_PROG_TYPE_SK_SKB,
    BPF_PROG_TYPE_CGROUP_DEVICE,
    BPF_PROG_TYPE_SK_MSG,
    BPF_PROG_TYPE_RAW_TRACEPOINT,
    BPF_PROG_TYPE_CGROUP_SOCK_ADDR,
    BPF_PROG_TYPE_LWT_SEG6LOCAL,
    BPF_PROG_TYPE_LIRC_MODE2,
    BPF_PROG_TYPE_SK_REUSEPORT,
    BPF_PROG_TYPE_FLOW_DISSECTOR,
    BPF_PROG_TYPE_CGROUP_SYSCTL,
    BPF_PROG_TYPE_RAW_TRACEPOINT_WRITABLE,
    BPF_PROG_TYPE_CGROUP_SOCKOPT,
    BPF_PROG_TYPE_TRACING,
    BPF_PROG_TYPE_STRUCT_OPS,
    BPF_PROG_TYPE_EXT,
    BPF_PROG_TYPE_LSM,
    BPF_PROG_TYPE_SK_LOOKUP,
    BPF_PROG_TYPE_SYSCALL,
    BPF_PROG_TYPE_NETFILTER,
};

/* A map or program of an object, as the guest names it to the host. The
 * fields are those of the wasm-bpf SDK's structs, sizes included. */
struct bpf_map {
    bpf_object_skel obj_ptr;
    char name[64];
};

struct bpf_program {
    bpf_object_skel obj_ptr;
    char name[64];
    char attach_target[128];
    bool autoattach;
};

/* What a program's attach returns; the host keeps the attachment until the
 * object is closed, so destroying a link only frees it. */
struct bpf_link {
    struct bpf_program *prog;
};

/* The skeleton a generated <name>.skel.h fills in (bpftool's layout). */
struct bpf_map_skeleton {
    const char *name;
    struct bpf_map **map;
    void **mmaped;
};

struct bpf_prog_skeleton {
    const char *name;
    struct bpf_program **prog;
};

struct bpf_object_skeleton {
    size_t sz;           /* sizeof(struct bpf_object_skeleton) */
    const char *name;
    void *data;          /* the ELF object; the skeleton's section structs point into it */
    size_t data_sz;
    size_t rodata_offset; /* of .rodata's bytes in data */
    size_t bss_offset;    /* unused: .bss has no bytes in the object */

    bpf_object_skel obj;  /* the host's handle once loaded */

    int map_cnt;
    int map_skel_sz;      /* sizeof(struct bpf_map_skeleton) */
    struct bpf_map_skeleton *maps;

    int prog_cnt;
    int prog_skel_sz;     /* sizeof(struct bpf_prog_skeleton) */
    struct bpf_prog_skeleton *progs;
};

struct bpf_object_open_opts; /* accepted for libbpf's signatures; nothing to set here */

/* The i-th entry of a skeleton array whose entries are `size` bytes each: the
 * skeleton says the size, so an older or newer one still indexes right. */
static inline void *libbpf_wasm__entry(void *base, int i, int size)
{
    return (char *)base + (size_t)i * (size_t)size;
}

static inline int bpf_map__fd(const struct bpf_map *map)
{
    if (!map || !map->obj_ptr)
        return -EINVAL;
    return libbpf_wasm__errno(wasm_bpf_map_fd_by_name(map->obj_ptr, map->name));
}

static inline const char *bpf_map__name(const struct bpf_map *map)
{
    return map ? map->name : NULL;
}

static inline const char *bpf_program__name(const struct bpf_program *prog)
{
    return prog ? prog->name : NULL;
}

/* Where to attach prog (a cgroup path for sockops, an interface for XDP...);
 * set it before attaching. The host decides the kind from the section name. */
static inline void bpf_set_prog_attach_target(struct bpf_program *prog, const char *attach_target)
{
    if (!prog)
        return;
    strncpy(prog->attach_target, attach_target ? attach_target : "",
            sizeof(prog->attach_target) - 1);
    prog->attach_target[sizeof(prog->attach_target) - 1] = '\0';
}

/* Whether the skeleton's attach attaches prog. The host loads every program of
 * an object, so with autoload off a program is loaded but not attached. */
static inline int bpf_program__set_autoattach(struct bpf_program *prog, bool autoattach)
{
    if (!prog)
        return -EINVAL;
    prog->autoattach = autoattach;
    return 0;
}

static inline bool bpf_program__autoattach(const struct bpf_program *prog)
{
    return prog && prog->autoattach;
}

static inline int bpf_program__set_autoload(struct bpf_program *prog, bool autoload)
{
    return bpf_program__set_autoattach(prog, autoload);
}

static inline int libbpf_wasm__attach(struct bpf_program *prog)
{
    const char *target = prog->attach_target[0] ? prog->attach_target : NULL;

    if (!prog->obj_ptr)
        return -EINVAL; /* not loaded yet */
    return libbpf_wasm__errno(wasm_attach_bpf_program(prog->obj_ptr, prog->name, target));
}

/* libbpf's: a link, or NULL with errno set. */
static inline struct bpf_link *bpf_program__attach(struct bpf_program *prog)
{
    struct bpf_link *link;
    int err;

    if (!prog) {
        errno = EINVAL;
        return NULL;
    }
    err = libbpf_wasm__attach(prog);
    if (err < 0) {
        errno = -err;
        return NULL;
    }
    link = calloc(1, sizeof(*link));
    if (!link) {
        errno = ENOMEM;
        return NULL;
    }
    link->prog = prog;
    return link;
}

static inline int bpf_link__destroy(struct bpf_link *link)
{
    free(link);
    return 0;
}

static inline int bpf_object__open_skeleton(struct bpf_object_skeleton *s,
                                            const struct bpf_object_open_opts *opts)
{
    (void)opts;
    if (!s || !s->data || !s->data_sz)
        return -EINVAL;
    for (int i = 0; i < s->map_cnt; i++) {
        struct bpf_map_skeleton *m = libbpf_wasm__entry(s->maps, i, s->map_skel_sz);
        struct bpf_map *map = calloc(1, sizeof(*map));

        if (!map)
            return -ENOMEM;
        strncpy(map->name, m->name, sizeof(map->name) - 1);
        *m->map = map;
    }
    for (int i = 0; i < s->prog_cnt; i++) {
        struct bpf_prog_skeleton *p = libbpf_wasm__entry(s->progs, i, s->prog_skel_sz);
        struct bpf_program *prog = calloc(1, sizeof(*prog));

        if (!prog)
            return -ENOMEM;
        strncpy(prog->name, p->name, sizeof(prog->name) - 1);
        prog->autoattach = true;
        *p->prog = prog;
    }
    return 0;
}

/* The object's bytes, with whatever the guest wrote into its sections, go to
 * the host here: after this, writes to skel->rodata reach nothing. */
static inline int bpf_object__load_skeleton(struct bpf_object_skeleton *s)
{
    if (!s || !s->data || !s->data_sz)
        return -EINVAL;
    if (s->obj)
        return -EBUSY;
    s->obj = wasm_load_bpf_object(s->data, (int)s->data_sz);
    if (!s->obj)
        return -EINVAL;
    for (int i = 0; i < s->map_cnt; i++) {
        struct bpf_map_skeleton *m = libbpf_wasm__entry(s->maps, i, s->map_skel_sz);

        if (*m->map)
            (*m->map)->obj_ptr = s->obj;
    }
    for (int i = 0; i < s->prog_cnt; i++) {
        struct bpf_prog_skeleton *p = libbpf_wasm__entry(s->progs, i, s->prog_skel_sz);

        if (*p->prog)
            (*p->prog)->obj_ptr = s->obj;
    }
    return 0;
}

static inline int bpf_object__attach_skeleton(struct bpf_object_skeleton *s)
{
    if (!s || !s->obj)
        return -EINVAL;
    for (int i = 0; i < s->prog_cnt; i++) {
        struct bpf_prog_skeleton *p = libbpf_wasm__entry(s->progs, i, s->prog_skel_sz);
        struct bpf_program *prog = *p->prog;
        int err;

        if (!prog || !prog->autoattach)
            continue;
        err = libbpf_wasm__attach(prog);
        if (err < 0)
            return err;
    }
    return 0;
}

/* The host detaches when the object is closed (destroy); nothing to do before. */
static inline void bpf_object__detach_skeleton(struct bpf_object_skeleton *s)
{
    (void)s;
}

static inline void bpf_object__destroy_skeleton(struct bpf_object_skeleton *s)
{
    if (!s)
        return;
    if (s->obj)
        wasm_close_bpf_object(s->obj);
    for (int i = 0; s->maps && i < s->map_cnt; i++) {
        struct bpf_map_skeleton *m = libbpf_wasm__entry(s->maps, i, s->map_skel_sz);

        if (m->map) {
            free(*m->map);
            *m->map = NULL;
        }
    }
    for (int i = 0; s->progs && i < s->prog_cnt; i++) {
        struct bpf_prog_skeleton *p = libbpf_wasm__entry(s->progs, i, s->prog_skel_sz);

        if (p->prog) {
            free(*p->prog);
            *p->prog = NULL;
        }
    }
    free(s->maps);
    free(s->progs);
    free(s);
}

/* Polling a ring buffer or perf event array map. */
typedef int (*bpf_buffer_sample_fn)(void *ctx, void *data, size_t size);

#ifndef LIBBPF_WASM_SAMPLE_MAX
#define LIBBPF_WASM_SAMPLE_MAX 65536 /* largest sample the host may hand over, bytes */
#endif

struct bpf_buffer {
    struct bpf_map *events;
    int fd;
    void *ctx;
    bpf_buffer_sample_fn sample_fn;
    char *sample; /* LIBBPF_WASM_SAMPLE_MAX bytes the host copies each sample into */
};

static inline struct bpf_buffer *bpf_buffer__new(struct bpf_map *events)
{
    struct bpf_buffer *buffer;
    int fd = bpf_map__fd(events);

    if (fd < 0) {
        errno = -fd;
        return NULL;
    }
    buffer = calloc(1, sizeof(*buffer));
    if (!buffer || !(buffer->sample = malloc(LIBBPF_WASM_SAMPLE_MAX))) {
        free(buffer);
        errno = ENOMEM;
        return NULL;
    }
    buffer->events = events;
    buffer->fd = fd;
    return buffer;
}

static inline struct bpf_buffer *bpf_buffer__open(struct bpf_map *events,
                                                  bpf_buffer_sample_fn sample_cb, void *ctx)
{
    struct bpf_buffer *buffer = bpf_buffer__new(events);

    if (buffer) {
        buffer->sample_fn = sample_cb;
        buffer->ctx = ctx;
    }
    return buffer;
}

/* Samples handled (>= 0) or a negative errno (-EINTR when interrupted). In
 * wasm32 a function pointer is its index in the exported function table,
 * which is how the host finds the callback. */
static inline int bpf_buffer__poll(struct bpf_buffer *buffer, int timeout_ms)
{
    if (!buffer || !buffer->sample_fn)
        return -EINVAL;
    return libbpf_wasm__errno(wasm_bpf_buffer_poll(buffer->events->obj_ptr, buffer->fd,
                                                   (int32_t)(uintptr_t)buffer->sample_fn,
                                                   (uint32_t)(uintptr_t)buffer->ctx,
                                                   buffer->sample, LIBBPF_WASM_SAMPLE_MAX,
                                                   timeout_ms));
}

static inline void bpf_buffer__free(struct bpf_buffer *buffer)
{
    if (!buffer)
        return;
    free(buffer->sample);
    free(buffer);
}

/* Map access by fd, as libbpf's bpf.h has it: 0, or a negative errno. */
static inline int libbpf_wasm__map(int fd, enum bpf_cmd cmd, const void *key, void *value,
                                   void *next_key, uint64_t flags)
{
    return libbpf_wasm__errno(wasm_bpf_map_operate(fd, cmd, (void *)key, value, next_key,
                                                   flags));
}

static inline int bpf_map_lookup_elem(int fd, const void *key, void *value)
{
    return libbpf_wasm__map(fd, BPF_MAP_LOOKUP_ELEM, key, value, NULL, 0);
}

static inline int bpf_map_lookup_elem_flags(int fd, const void *key, void *value,
                                            uint64_t flags)
{
    return libbpf_wasm__map(fd, BPF_MAP_LOOKUP_ELEM, key, value, NULL, flags);
}

static inline int bpf_map_update_elem(int fd, const void *key, const void *value,
                                      uint64_t flags)
{
    return libbpf_wasm__map(fd, BPF_MAP_UPDATE_ELEM, key, (void *)value, NULL, flags);
}

static inline int bpf_map_delete_elem(int fd, const void *key)
{
    return libbpf_wasm__map(fd, BPF_MAP_DELETE_ELEM, key, NULL, NULL, 0);
}

static inline int bpf_map_delete_elem_flags(int fd, const void *key, uint64_t flags)
{
    return libbpf_wasm__map(fd, BPF_MAP_DELETE_ELEM, key, NULL, NULL, flags);
}

static inline int bpf_map_get_next_key(int fd, const void *key, void *next_key)
{
    return libbpf_wasm__map(fd, BPF_MAP_GET_NEXT_KEY, key, NULL, next_key, 0);
}

#ifdef __cplusplus
}
#endif

#endif /* _LIBBPF_WASM_H */
