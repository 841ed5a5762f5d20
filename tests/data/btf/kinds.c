/* Exercises every BTF kind clang-19 emits, for ecc's BTF reader tests.
 * Self-contained on purpose (no vmlinux.h, no system headers) so the
 * objects stay small. Rebuild with ./build.sh. */

#define SEC(name) __attribute__((section(name), used))
#define __tag(x) __attribute__((btf_decl_tag(x)))
#define __user __attribute__((btf_type_tag("user")))

typedef unsigned int __u32;
typedef unsigned long long __u64;
typedef int pid_t;
typedef _Bool bool;

struct fwd_only;                          /* FWD struct */
union fwd_union;                          /* FWD union */

enum color { RED, GREEN = 5, BLUE = -1 }; /* signed ENUM */
enum flags { F_A = 1, F_B = 0x80000000u };/* unsigned ENUM */
enum wide { W_SMALL = 1, W_BIG = 0xffffffff00000001ull };  /* ENUM64 */
enum neg64 { N_MIN = -0x7fffffffffffffffll - 1, N_ONE = 1 }; /* signed ENUM64 */

struct bits {
	unsigned int lo : 3;
	unsigned int mid : 13;
	int neg : 4;
	unsigned long long wide : 40;
	bool flag : 1;
	char after;
};

union number {
	int i;
	float f;
	double d;
	unsigned char raw[8];
};

typedef int (*handler_t)(void *ctx, int code);

struct event {
	pid_t pid;
	__u32 uid __tag("uid_member");
	__u64 ts;
	char comm[16];
	int grid[2][3][4];
	const char *name;
	char *const fixed;
	volatile int vol;
	const volatile int cv;
	int *restrict rp;
	int (*arr_ptr)[4];
	int *ptr_arr[4];
	int (*fp)(void *, int);
	char *(*fpr)(int);
	int (*fparr[2])(void);
	void (*varfn)(int, ...);
	handler_t h;
	struct fwd_only *fwd;
	union fwd_union *fwdu;
	enum color c;
	enum wide w;
	enum neg64 n64;
	enum flags fl;
	struct bits b;
	union number num;
	struct { int x, y; } anon_s;
	union { int ai; char ac; } anon_u;
	enum { AE_ONE = 1 } anon_e;
	int __user *uptr;
	long double ld;
	__int128 big;
	unsigned __int128 ubig;
	signed char sc;
	unsigned char uc;
	short sh;
	unsigned short ush;
	long l;
	unsigned long ul;
	long long ll;
	unsigned long long ull;
	bool ok;
	int flex[];
} __tag("event_struct");

/* .rodata */
const volatile int min_duration = 100;
const volatile char greeting[16] = "hello";
const volatile struct event *const_ev_ptr = 0;
/* .data */
int counter = 1;
struct event *last_event = 0;
/* .bss */
struct event zero_event;
union number zero_num;
enum color zero_color;
float zero_float;
double zero_double;
int matrix[3][4];
handler_t cb;
/* static global (linkage static) */
static volatile int hidden = 7;
/* .kconfig extern */
extern int LINUX_KERNEL_VERSION __attribute__((section(".kconfig")));
extern bool CONFIG_BPF_SYSCALL __attribute__((section(".kconfig"), weak));
/* ksym extern function */
extern int bpf_fake_kfunc(int x) __attribute__((section(".ksyms")));

__attribute__((noinline)) static int helper_static(int a __tag("param_a"), struct bits *b)
{
	return a + b->lo + hidden;
}

__attribute__((noinline)) int helper_global(int (*op)(int, int), int x)
	__tag("global_fn");
__attribute__((noinline)) int helper_global(int (*op)(int, int), int x)
{
	return x + (op != 0);
}

SEC("tracepoint/syscalls/sys_enter_execve")
int handle_exec(void *ctx)
{
	struct bits b = { .lo = 1 };
	counter += helper_static(min_duration, &b) + LINUX_KERNEL_VERSION;
	if (CONFIG_BPF_SYSCALL)
		counter += bpf_fake_kfunc(greeting[0]);
	zero_event.pid = counter + matrix[1][2] + helper_global(0, 2);
	zero_float = 0;
	zero_double = 0;
	last_event = &zero_event;
	cb = 0;
	return zero_num.i + zero_color + (const_ev_ptr != 0);
}

char LICENSE[] SEC("license") = "GPL";
