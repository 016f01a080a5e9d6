/* test_main.c - runs every firmware unit test; exit status 0 only if all pass. */
#include <string.h>
#include "tests.h"

int t_failures;
static uint32_t rng = 12345u;
void tb_seed(uint32_t s) { rng = s ? s : 1u; }
uint32_t tb_rand(void) { rng ^= rng << 13; rng ^= rng >> 17; rng ^= rng << 5; return rng; }

static const struct { const char *name; void (*fn)(void); } TESTS[] = {
    {"crc", test_crc}, {"cobs", test_cobs}, {"proto", test_proto}, {"meta", test_meta},
    {"accel", test_accel}, {"sched", test_sched},
};

int main(int argc, char **argv)
{
    size_t i;
    int ran = 0;
    for (i = 0; i < sizeof(TESTS) / sizeof(TESTS[0]); i++) {
        int before = t_failures;
        if (argc > 1 && strcmp(argv[1], TESTS[i].name) != 0) continue;
        TESTS[i].fn();
        ran++;
        printf("%-8s %s\n", TESTS[i].name, t_failures == before ? "ok" : "FAILED");
    }
    if (!ran) { fprintf(stderr, "no test named %s\n", argv[1]); return 2; }
    printf("%d failure(s)\n", t_failures);
    return t_failures ? 1 : 0;
}
