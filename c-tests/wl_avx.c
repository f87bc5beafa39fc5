/*
 * wl_avx: the extended FPU state. ymm0-ymm15 are loaded with distinct 256-bit
 * patterns inside one asm block, which then spins reading a flag in memory (set
 * by the SIGTERM handler; the kernel saves and restores the vector registers
 * around the handler) and finally stores ymm0-ymm15 for comparison. MXCSR
 * (round toward zero, flush-to-zero) and the x87 control word (round down,
 * single precision) are set before and checked after.
 *
 * "ready" is printed just before the asm block; the harness waits a little
 * after "ready", so the dump normally finds the task in the spin.
 */
#include <stdint.h>

#include "workload.h"

#define MXCSR_WANT_BITS 0xe000u /* RC = toward zero (0x6000), FTZ (0x8000) */
#define MXCSR_MASK_BITS 0xe000u
#define FCW_WANT_BITS 0x0400u /* RC = down, PC = single */
#define FCW_MASK_BITS 0x0f00u

static uint8_t in[16][32] __attribute__((aligned(32)));
static uint8_t out[16][32] __attribute__((aligned(32)));

static uint8_t pattern(int reg, int byte)
{
	return (uint8_t)(reg * 37 + byte * 11 + 0x5b) ^ (uint8_t)(byte << 3);
}

int main(int argc, char **argv)
{
	uint32_t mxcsr, mxcsr_set;
	uint16_t fcw, fcw_set;

	(void)argc;
	(void)argv;
	wl_install_term();
	if (!__builtin_cpu_supports("avx")) {
		wl_info("no AVX on this CPU: nothing to check");
		wl_ready();
		wl_wait_for_term();
		return wl_finish();
	}
	for (int r = 0; r < 16; r++)
		for (int b = 0; b < 32; b++)
			in[r][b] = pattern(r, b);
	if (wl_selftest_break())
		in[9][27] ^= 0x40; /* ymm9 gets a wrong byte in its upper half */

	__asm__ volatile("stmxcsr %0" : "=m"(mxcsr));
	mxcsr_set = (mxcsr & ~MXCSR_MASK_BITS) | MXCSR_WANT_BITS;
	__asm__ volatile("ldmxcsr %0" : : "m"(mxcsr_set));
	__asm__ volatile("fnstcw %0" : "=m"(fcw));
	fcw_set = (uint16_t)((fcw & ~FCW_MASK_BITS) | FCW_WANT_BITS);
	__asm__ volatile("fldcw %0" : : "m"(fcw_set));

	wl_ready();
	__asm__ volatile(
		"vmovdqu 0x000(%[in]), %%ymm0\n\t"
		"vmovdqu 0x020(%[in]), %%ymm1\n\t"
		"vmovdqu 0x040(%[in]), %%ymm2\n\t"
		"vmovdqu 0x060(%[in]), %%ymm3\n\t"
		"vmovdqu 0x080(%[in]), %%ymm4\n\t"
		"vmovdqu 0x0a0(%[in]), %%ymm5\n\t"
		"vmovdqu 0x0c0(%[in]), %%ymm6\n\t"
		"vmovdqu 0x0e0(%[in]), %%ymm7\n\t"
		"vmovdqu 0x100(%[in]), %%ymm8\n\t"
		"vmovdqu 0x120(%[in]), %%ymm9\n\t"
		"vmovdqu 0x140(%[in]), %%ymm10\n\t"
		"vmovdqu 0x160(%[in]), %%ymm11\n\t"
		"vmovdqu 0x180(%[in]), %%ymm12\n\t"
		"vmovdqu 0x1a0(%[in]), %%ymm13\n\t"
		"vmovdqu 0x1c0(%[in]), %%ymm14\n\t"
		"vmovdqu 0x1e0(%[in]), %%ymm15\n\t"
		"1:\n\t"
		"pause\n\t"
		"cmpl $0, (%[flag])\n\t"
		"je 1b\n\t"
		"vmovdqu %%ymm0, 0x000(%[out])\n\t"
		"vmovdqu %%ymm1, 0x020(%[out])\n\t"
		"vmovdqu %%ymm2, 0x040(%[out])\n\t"
		"vmovdqu %%ymm3, 0x060(%[out])\n\t"
		"vmovdqu %%ymm4, 0x080(%[out])\n\t"
		"vmovdqu %%ymm5, 0x0a0(%[out])\n\t"
		"vmovdqu %%ymm6, 0x0c0(%[out])\n\t"
		"vmovdqu %%ymm7, 0x0e0(%[out])\n\t"
		"vmovdqu %%ymm8, 0x100(%[out])\n\t"
		"vmovdqu %%ymm9, 0x120(%[out])\n\t"
		"vmovdqu %%ymm10, 0x140(%[out])\n\t"
		"vmovdqu %%ymm11, 0x160(%[out])\n\t"
		"vmovdqu %%ymm12, 0x180(%[out])\n\t"
		"vmovdqu %%ymm13, 0x1a0(%[out])\n\t"
		"vmovdqu %%ymm14, 0x1c0(%[out])\n\t"
		"vmovdqu %%ymm15, 0x1e0(%[out])\n\t"
		"vzeroupper\n\t"
		:
		: [in] "r"(in), [out] "r"(out), [flag] "r"(&wl_term)
		: "memory", "cc", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7",
		  "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15");

	__asm__ volatile("stmxcsr %0" : "=m"(mxcsr));
	__asm__ volatile("fnstcw %0" : "=m"(fcw));
	for (int r = 0; r < 16; r++)
		for (int b = 0; b < 32; b++)
			if (out[r][b] != pattern(r, b)) {
				wl_fail("ymm%d byte %d is %#04x, want %#04x", r, b, out[r][b],
					pattern(r, b));
				break;
			}
	WL_CHECK((mxcsr & 0xffc0u) == (mxcsr_set & 0xffc0u), "MXCSR %#x, want %#x", mxcsr, mxcsr_set);
	WL_CHECK(fcw == fcw_set, "x87 control word %#x, want %#x", fcw, fcw_set);
	return wl_finish();
}
