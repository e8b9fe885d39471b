/*
 * startup.c -- reset, vector table and fault handlers for mps2-an386.
 *
 * SPDX-License-Identifier: MIT
 *
 * Reset copies .data from flash, zeroes .bss, enables the FPU (the M4F
 * build uses hard-float calling conventions only if asked; -mfloat-abi=soft
 * is the default here, so the FPU is just switched on for libraries) and
 * calls main.  Faults print on the UART and stop.
 */
#include <stdint.h>

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;
extern int main(void);
void board_fault(const char *what);
void board_systick(void);

void Reset_Handler(void);
void Default_Handler(void);
void HardFault_Handler(void);
void SysTick_Handler(void);

void
Reset_Handler(void)
{
    uint32_t *s = &_sidata, *d = &_sdata;

    while (d < &_edata)
        *d++ = *s++;
    for (d = &_sbss; d < &_ebss; d++)
        *d = 0;
    *(volatile uint32_t *)0xE000ED88 |= 0xFu << 20; /* CPACR: CP10, CP11 full access */
    main();
    for (;;)
        ;
}

void
Default_Handler(void)
{
    board_fault("unexpected interrupt");
}

void
HardFault_Handler(void)
{
    board_fault("hard fault");
}

void
SysTick_Handler(void)
{
    board_systick();
}

/* Cortex-M4: 16 system vectors, then the AN386's 32 external interrupts
 * (all unused: the board polls). */
__attribute__((section(".isr_vector"), used)) static void (*const vectors[16 + 32])(void) = {
    (void (*)(void))(&_estack),
    Reset_Handler,
    Default_Handler,   /* NMI */
    HardFault_Handler,
    HardFault_Handler, /* MemManage */
    HardFault_Handler, /* BusFault */
    HardFault_Handler, /* UsageFault */
    0, 0, 0, 0,
    Default_Handler,   /* SVCall */
    Default_Handler,   /* DebugMon */
    0,
    Default_Handler,   /* PendSV */
    SysTick_Handler,
    [16 ... 47] = Default_Handler,
};
