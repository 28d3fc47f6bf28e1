/* Placeholder entry of the `loom` CLI; replaced by the command table in main.c. */
#include "loom.h"

#include <stdio.h>

int main(void) {
    printf("loom %s\n", loom_version_string());
    return 0;
}
