/* The GEMM's OpenMP team, from inside a `with parallel()` block of Cython: each thread
   asks its number and the team's size and takes its static share of the work; a
   barrier synchronises them between the packing of a B block and its use.  Without
   OpenMP (or outside a parallel region) there is one thread and no barrier.

   Included by the per-ISA GEMM modules through gemm_impl.pxi only. */
#ifndef DLK_GEMM_TEAM_H
#define DLK_GEMM_TEAM_H

#ifdef _OPENMP
#include <omp.h>
#endif

/* A barrier for the threads of the enclosing OpenMP parallel region (an orphaned
   barrier; outside a region, or without OpenMP, it does nothing).  Cython compiles a
   prange inside a `with parallel()` block to `omp for nowait`, so the driver
   synchronises explicitly with this. */
static void dlk_gemm_barrier(void) {
#ifdef _OPENMP
#pragma omp barrier
#endif
}

#ifdef _OPENMP
static int dlk_gemm_team_size(void) { return omp_get_num_threads(); }
static int dlk_gemm_thread_num(void) { return omp_get_thread_num(); }
#else
static int dlk_gemm_team_size(void) { return 1; }
static int dlk_gemm_thread_num(void) { return 0; }
#endif

#endif /* DLK_GEMM_TEAM_H */
