// bpf_core_type_matches (TYPE_MATCHES) cases for tests/test_compat_matches.py. Each
// program loads only if the relocation's answer is the one the branch keeps: when the
// local type does not match, the program dereferences an unknown scalar, which the
// verifier refuses; when it matches, that branch is dead and pruned.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

char LICENSE[] SEC("license") = "GPL";

static __always_inline int need(int matches)
{
	if (matches)
		return 0;
	return *(int *)(long)bpf_get_prandom_u32();
}

struct task_struct___ints { int pid; int tgid; };                 /* pid_t is int */
struct task_struct___unsigned { unsigned int pid; };              /* signedness */
struct task_struct___extra { int pid; int no_such_member; };
struct task_struct___long { long pid; };                          /* another int */
struct task_struct___comm { char comm[16]; };                    /* BTF char is signed
                                                                     here, not there */
struct files_struct___fds { struct file *fd_array[64]; };
struct files_struct___short { struct file *fd_array[32]; };       /* array length */
struct signal_struct___rlim { struct rlimit rlim[16]; };          /* clang says "unsigned
                                                                     long", the kernel's
                                                                     BTF "long unsigned
                                                                     int" */
struct mm_struct___whatever { int not_in_the_kernel; };
struct task_struct___ptr { struct mm_struct___whatever *mm; };    /* not looked into */
struct mm_struct___anon { struct { int map_count; }; };          /* anonymous member */
struct mm_struct___anon_extra { struct { int map_count; int nope; }; };
struct mm_struct___fwd;
union mm_struct___union;
struct task_struct___fwd { struct mm_struct___fwd *mm; };         /* forward, same kind */
struct task_struct___union { union mm_struct___union *mm; };      /* forward, other kind */
enum pid_type___names { PIDTYPE_TGID___a = 42, PIDTYPE_PID___a = 7 }; /* values ignored */
enum pid_type___bogus { PIDTYPE_NOT_THERE___b };
struct file_operations___open { int (*open)(struct inode *, struct file *); };
struct file_operations___arity { int (*open)(struct inode *); };
struct file_operations___ret { long (*open)(struct inode *, struct file *); };
struct file_operations___param { int (*open)(struct inode *, struct inode *); };

#define CASE(name, type) \
	SEC("kprobe/do_nanosleep") int name(void *ctx) { return need(bpf_core_type_matches(type)); }

CASE(ints, struct task_struct___ints)
CASE(unsigned_pid, struct task_struct___unsigned)
CASE(extra_member, struct task_struct___extra)
CASE(long_pid, struct task_struct___long)
CASE(comm, struct task_struct___comm)
CASE(fds, struct files_struct___fds)
CASE(short_fds, struct files_struct___short)
CASE(rlim, struct signal_struct___rlim)
CASE(behind_pointer, struct task_struct___ptr)
CASE(anon_member, struct mm_struct___anon)
CASE(anon_extra, struct mm_struct___anon_extra)
CASE(fwd_pointer, struct task_struct___fwd)
CASE(union_pointer, struct task_struct___union)
CASE(enum_names, enum pid_type___names)
CASE(enum_bogus, enum pid_type___bogus)
CASE(func_proto, struct file_operations___open)
CASE(func_arity, struct file_operations___arity)
CASE(func_return, struct file_operations___ret)
CASE(func_param, struct file_operations___param)
