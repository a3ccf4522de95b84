/* /init for the Linux side of the boot-time comparison (tests/bench/linux-boot.sh): a static
 * musl binary that says it is running and powers the machine off. */
#include <stdio.h>
#include <sys/reboot.h>
#include <unistd.h>

int main(void)
{
    printf("linux-bench: init reached\n");
    fflush(stdout);
    sync();
    reboot(RB_POWER_OFF);
    return 0;
}
