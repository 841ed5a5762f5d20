// Globals of every type an `ecc run` option can have, for tests/unit/test_options.py.
// Compiled at test time (clang-19 -g -O2 -target bpfel / bpfeb); no object is checked in.
#include <linux/bpf.h>
#include <linux/types.h>
#include <bpf/bpf_helpers.h>

// As vmlinux.h spells them, so the package type strings are "bool" and "pid_t".
typedef _Bool bool;
typedef int pid_t;
typedef char name_t[8];

enum mode { MODE_A = 0, MODE_B = 1, MODE_C = 7 };
enum big { BIG_LO = -5, BIG_HI = 0x7fffffffffLL };
enum neg8 : signed char { N8_MINUS = -1, N8_ONE = 1 };

struct pair { int a; int b; };

/* .rodata: const volatile, every kind of scalar and a few that are not settable */
const volatile int c_int = -7;
const volatile unsigned long long c_u64 = 0x1122334455667788ULL;
const volatile bool c_bool = 1;
const volatile _Bool c_raw_bool = 0;
const volatile pid_t c_pid = 0;
const volatile enum mode c_mode = MODE_C;
const volatile enum big c_big = BIG_HI;
const volatile enum neg8 c_neg8 = N8_MINUS;
const volatile enum { ANON_ONE = 1, ANON_TWO = 2 } c_anon = ANON_TWO;
const volatile char c_comm[16] = "bash";
const volatile name_t c_name = "init";
const volatile double c_double = 2.5;
const volatile float c_float = -0.5f;
const volatile struct pair c_pair = { 1, 2 };
const volatile unsigned char c_u8 = 200;
const volatile signed char c_s8 = -100;
const volatile short c_s16 = -300;
const volatile unsigned short c_u16 = 60000;
const volatile __u32 c_u32 = 4000000000U;
const volatile long c_long = -1;
const volatile __int128 c_i128 = -2;
const volatile unsigned __int128 c_u128 = 3;
const volatile int c_ints[3] = { 1, 2, 3 };
const volatile __u8 c_mac[6] = { 1, 2, 3, 4, 5, 6 };
const volatile char c_ch = 'x';
const volatile int *const volatile c_ptr = 0;
static const volatile int c_static = 9;

/* .data: writable, non-zero initializers, and a static that must not become an option */
int d_count = 42;
__u64 d_big = 0xdeadbeefULL;
static int d_static = 5;

/* .bss: zero-initialized, plus the pointer ecc adds for an exported struct */
int b_zero;
char b_name[8];
const volatile struct pair *__eunomia_dummy_pair_ptr __attribute__((unused));

/* a custom data section */
int cfg_level SEC(".data.cfg") = 3;
unsigned short cfg_port SEC(".data.cfg") = 8080;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} out SEC(".maps");

/* Non-static globals are emitted whether used or not; the statics must be used. */
SEC("tp/sched/sched_process_exec")
int handle(void *ctx)
{
	__u32 k = 0;
	__u64 v = c_int + c_static + d_static++;

	bpf_map_update_elem(&out, &k, &v, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
