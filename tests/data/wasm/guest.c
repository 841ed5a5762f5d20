/* A WebAssembly guest of `ecc run APP.wasm`, well behaved or hostile by argv[1].
 * The BPF object (wasmh.bpf.c) is embedded by the test as wasmh_obj.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "wasm_bpf_abi.h"
#include "wasmh_obj.h"

struct exec_event {
	uint32_t pid;
	char comm[16];
};

static uint64_t obj;
static const char *want_comm = "";
static int found;
static uint32_t found_pid;
static char buf[256];

static uint64_t load(void)
{
	uint64_t handle = wasm_load_bpf_object(wasmh_obj, (int)sizeof(wasmh_obj));

	if (!handle) {
		printf("load failed\n");
		exit(20);
	}
	return handle;
}

static int on_event(void *ctx, void *data, size_t size)
{
	const struct exec_event *e = data;

	if (size < sizeof(*e) || strncmp(e->comm, want_comm, sizeof(e->comm)) != 0)
		return 0;
	printf("event pid=%u comm=%s size=%zu ctx=%u\n", e->pid, e->comm, size,
	       (unsigned)(uintptr_t)ctx);
	found = 1;
	found_pid = e->pid;
	return 0;
}

static int hang(void *ctx, void *data, size_t size)
{
	printf("in callback\n");
	for (volatile int spin = 1; spin;)
		;
	return 0;
}

static int trap(void *ctx, void *data, size_t size)
{
	__builtin_trap();
}

static int close_inside(void *ctx, void *data, size_t size)
{
	return wasm_close_bpf_object(obj);
}

static int exit_inside(void *ctx, void *data, size_t size)
{
	exit(5);
}

static void not_a_sample(void)
{
}

/* Only execs of `comm` reach the guest: the BPF side reads it from wasmh_filter. */
static void only(const char *comm)
{
	char value[16] = {0};
	uint32_t zero = 0;

	strncpy(value, comm, sizeof(value) - 1);
	if (wasm_bpf_map_operate(wasm_bpf_map_fd_by_name(obj, "wasmh_filter"), 2, &zero, value,
				 NULL, 0)) {
		printf("filter update failed\n");
		exit(24);
	}
}

static int attach(const char *name, const char *target)
{
	int rc = wasm_attach_bpf_program(obj, name, target);

	printf("attach %s rc=%d\n", name, rc);
	return rc;
}

static void poll_with(int32_t callback, int fd)
{
	for (;;) {
		int rc = wasm_bpf_buffer_poll(obj, fd, callback, 0, buf, sizeof(buf), 100);
		if (rc < 0) {
			printf("poll rc=%d\n", rc);
			exit(21);
		}
	}
}

/* events ring|perf COMM CODE: print the exec of COMM, work the hash map, exit CODE. */
static int events(int argc, char **argv)
{
	int perf = strcmp(argv[2], "perf") == 0;
	int fd, rc;
	uint32_t key = 7, next = 0, missing = 99;
	uint64_t value, got = 0;

	want_comm = argv[3];
	obj = load();
	only(want_comm);
	if (attach(perf ? "wasmh_exec_perf" : "wasmh_exec", NULL))
		return 22;
	printf("missing program rc=%d\n", wasm_attach_bpf_program(obj, "no_such_prog", NULL));
	printf("missing map rc=%d\n", wasm_bpf_map_fd_by_name(obj, "no_such_map"));
	fd = wasm_bpf_map_fd_by_name(obj, perf ? "wasmh_perf" : "wasmh_ring");
	printf("ready\n");
	while (!found) {
		rc = wasm_bpf_buffer_poll(obj, fd, (int32_t)(uintptr_t)on_event, 1234, buf,
					  sizeof(buf), -1);
		if (rc < 0) {
			printf("poll rc=%d\n", rc);
			return 23;
		}
	}
	fd = wasm_bpf_map_fd_by_name(obj, "wasmh_table");
	value = found_pid;
	printf("update rc=%d\n", wasm_bpf_map_operate(fd, 2, &key, &value, NULL, 0));
	rc = wasm_bpf_map_operate(fd, 1, &key, &got, NULL, 0);
	printf("lookup rc=%d value=%llu\n", rc, (unsigned long long)got);
	rc = wasm_bpf_map_operate(fd, 4, NULL, NULL, &next, 0);
	printf("first key rc=%d key=%u\n", rc, next);
	printf("after last rc=%d\n", wasm_bpf_map_operate(fd, 4, &key, NULL, &next, 0));
	printf("lookup missing rc=%d\n", wasm_bpf_map_operate(fd, 1, &missing, &got, NULL, 0));
	printf("delete rc=%d\n", wasm_bpf_map_operate(fd, 3, &key, NULL, NULL, 0));
	printf("delete again rc=%d\n", wasm_bpf_map_operate(fd, 3, &key, NULL, NULL, 0));
	printf("bad cmd rc=%d\n", wasm_bpf_map_operate(fd, 42, &key, NULL, NULL, 0));
	printf("foreign fd rc=%d\n", wasm_bpf_map_operate(1, 1, &key, &got, NULL, 0));
	printf("close rc=%d\n", wasm_close_bpf_object(obj));
	exit(atoi(argv[4]));
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";
	unsigned memory = (unsigned)__builtin_wasm_memory_size(0) * 65536u;

	setvbuf(stdout, NULL, _IONBF, 0);
	if (strcmp(mode, "events") == 0 && argc == 5)
		return events(argc, argv);
	if (strcmp(mode, "args") == 0) {  /* args ...: argv, $WASMH, exit status 9 */
		const char *env = getenv("WASMH");

		for (int i = 0; i < argc; i++)
			printf("argv[%d]=%s\n", i, argv[i]);
		printf("WASMH=%s\n", env ? env : "(unset)");
		return 9;
	}
	if (strcmp(mode, "read") == 0 && argc == 3) {  /* read PATH: print its first line */
		FILE *f = fopen(argv[2], "r");

		if (!f) {
			printf("cannot open %s\n", argv[2]);
			return 4;
		}
		printf("read %s\n", fgets(buf, sizeof(buf), f) ? buf : "");
		fclose(f);
		return 0;
	}
	if (strcmp(mode, "spin") == 0) {  /* loops in main, calling nothing */
		printf("spinning\n");
		for (volatile int spin = 1; spin;)
			;
	}
	if (strcmp(mode, "hang") == 0 && argc == 4) {
		/* hang IFNAME COMM: xdp on IFNAME, a callback (on COMM's exec) that spins */
		obj = load();
		only(argv[3]);
		if (attach("wasmh_exec", NULL) || attach("wasmh_xdp", argv[2]))
			return 22;
		printf("ready\n");
		poll_with((int32_t)(uintptr_t)hang, wasm_bpf_map_fd_by_name(obj, "wasmh_ring"));
	}
	if (strcmp(mode, "xdp-nowhere") == 0) {
		obj = load();
		attach("wasmh_xdp", "wasmh_nosuchif");
		attach("wasmh_xdp", NULL);
		return 0;
	}
	if (strcmp(mode, "badhandle") == 0)
		return wasm_attach_bpf_program(0x1234, "wasmh_exec", NULL);
	if (strcmp(mode, "closed") == 0) {
		obj = load();
		printf("close rc=%d\n", wasm_close_bpf_object(obj));
		return wasm_bpf_map_fd_by_name(obj, "wasmh_ring");
	}
	if (strcmp(mode, "keyptr") == 0) {
		uint64_t value;

		obj = load();
		attach("wasmh_exec", NULL);
		printf("memory %u\n", memory);
		return wasm_bpf_map_operate(wasm_bpf_map_fd_by_name(obj, "wasmh_table"), 1,
					    (void *)(uintptr_t)(memory - 2), &value, NULL, 0);
	}
	if (strcmp(mode, "overflow") == 0) {
		printf("memory %u\n", memory);
		return (int)wasm_load_bpf_object((void *)(uintptr_t)0xffffff00u, 0x200);
	}
	if (strcmp(mode, "negative") == 0) {
		obj = load();
		attach("wasmh_exec", NULL);
		return wasm_bpf_buffer_poll(obj, wasm_bpf_map_fd_by_name(obj, "wasmh_ring"),
					    (int32_t)(uintptr_t)on_event, 0, buf, -1, 0);
	}
	if (strcmp(mode, "longname") == 0) {
		static char name[8192];

		obj = load();
		memset(name, 'a', sizeof(name));
		printf("name %u\n", (unsigned)(uintptr_t)name);
		return wasm_attach_bpf_program(obj, name, NULL);
	}
	if (strcmp(mode, "notelf") == 0)
		return (int)wasm_load_bpf_object("hello, not an ELF", 17);
	if ((strcmp(mode, "trap") == 0 || strcmp(mode, "close-inside") == 0 ||
	     strcmp(mode, "exit-inside") == 0 || strcmp(mode, "wrong-type") == 0) && argc == 3) {
		/* MODE COMM: the callback of MODE runs on COMM's exec */
		int32_t cb = strcmp(mode, "trap") == 0 ? (int32_t)(uintptr_t)trap
			: strcmp(mode, "close-inside") == 0 ? (int32_t)(uintptr_t)close_inside
			: strcmp(mode, "exit-inside") == 0 ? (int32_t)(uintptr_t)exit_inside
			: (int32_t)(uintptr_t)not_a_sample;

		obj = load();
		only(argv[2]);
		attach("wasmh_exec", NULL);
		attach("wasmh_xdp", "lo");
		printf("callback %d\n", cb);
		printf("ready\n");
		poll_with(cb, wasm_bpf_map_fd_by_name(obj, "wasmh_ring"));
	}
	printf("unknown mode %s\n", mode);
	return 2;
}
