/*
 * core_alone.c - the Makefile links every object of libslawcore.a into this
 * program (--whole-archive) with libc and libm only: the build fails when
 * the pure core calls anything outside itself (the config loader, logging,
 * an I/O library). The program itself does nothing.
 */
int main(void);

int
main(void)
{
    return 0;
}
