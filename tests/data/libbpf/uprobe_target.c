/* The user program the uprobe test traces: calls ecc_uprobe_target 3 times. */
#include <stdio.h>

__attribute__((noinline)) long ecc_uprobe_target(long x)
{
	__asm__ volatile("" ::: "memory");
	return x + 1;
}

int main(void)
{
	long sum = 0;

	for (int i = 0; i < 3; i++)
		sum += ecc_uprobe_target(1234);
	printf("%ld\n", sum);
	return 0;
}
