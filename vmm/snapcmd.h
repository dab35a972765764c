/* `vmm checkpoint`, `vmm restore`, `vmm inspect` (vmm/snapcmd.c). */
#ifndef VMM_SNAPCMD_H
#define VMM_SNAPCMD_H

int cmd_checkpoint(int argc, char **argv);
int cmd_restore(int argc, char **argv);
int cmd_inspect(int argc, char **argv);

#endif
