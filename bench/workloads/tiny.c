/* tiny: the smallest process there is: ready, sleep until SIGTERM, exit 0. */
#include "bench.h"

int main(void)
{
	bench_install_term();
	bench_ready();
	bench_wait_for_term();
	printf("PASS\n");
	return 0;
}
