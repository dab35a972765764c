/* Guest RAM as the snapshot section "ram" (instance 0, version 1), the
 * encoding of docs/snapshot-format.md, section "RAM":
 *   START  u64 ram_size, u32 nregions, u32 reserved (0), then per region
 *          u64 gpa, u64 size — the layout, which a restore must match exactly;
 *   PART…  page runs: u32 run_count, u32 reserved, runs {u64 gpa,
 *          u64 npages | kind << 56}, padding (page-aligned layout), page data;
 *   END    the last runs (or none).
 * Zero pages are not sent (a full restore starts from zeroed RAM); holes of
 * the memfd are skipped without being read. A record carries at most
 * RAM_RECORD_DATA_MAX bytes of page data. */
#ifndef SNAPSHOT_RAM_H
#define SNAPSHOT_RAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct guest_mem;
struct snap_reader;
struct snap_record;
struct snap_writer;

#define RAM_SECTION_NAME     "ram"
#define RAM_SECTION_VERSION  1
#define RAM_PAGE_SIZE        4096ULL
/* Page data per PART/END record this writer emits (bounds the reader's
 * latency between CRC checks and the writer's pinned pages). */
#define RAM_RECORD_DATA_MAX  (64ULL << 20)
/* Runs per PART/END record a reader accepts (the run list is held in
 * memory while the page data is read: 1 MiB at most). */
#define RAM_RUNS_MAX         65536u
/* Regions a START record may describe. */
#define RAM_REGIONS_MAX      16u

/* Run kinds (bits 56–63 of npages_and_kind). */
#define RAM_RUN_DATA         0u
#define RAM_RUN_ZERO         1u
#define RAM_RUN_NPAGES_MASK  ((1ULL << 56) - 1)

struct ram_stats {
	uint64_t pages_total;  /* pages of guest RAM */
	uint64_t pages_data;   /* pages sent / loaded as data */
	uint64_t pages_zero;   /* save: zero pages left out; load: pages of zero runs */
	uint64_t runs;         /* run list entries */
	uint64_t records;      /* records of the section (START, PARTs, END) */
	uint64_t bytes_data;   /* page data bytes */
};

/* True if the 4 KiB page at p is all zero bytes. */
bool ram_page_is_zero(const void *p);

/* Save all of guest RAM as section "ram": START, PART records of at most
 * RAM_RECORD_DATA_MAX bytes of page data, END. With the file's
 * SNAP_FLAG_PAGE_ALIGNED, records holding data are page-aligned, and page
 * data goes to the stream by reference (snap_writer_put_pages), so the
 * guest must stay paused until the stream is flushed or committed: the CRC
 * is taken as pages are handed over. *stats is filled (may be NULL).
 * Returns 0 or -errno (the writer's sticky error; -EINVAL for a RAM layout
 * that is not page-granular). Nothing is logged. */
int ram_save(struct snap_writer *w, struct guest_mem *mem, struct ram_stats *stats);

/* Load one record of section "ram" that snap_reader_next() just returned:
 * START checks the layout equals mem's (-EPROTO: "snapshot RAM is 256 MiB,
 * this VM has 128 MiB"); PART/END validate the whole run list before
 * writing anything (gpa aligned, npages > 0, kind known, each run inside
 * one RAM region, payload_len = run list + padding + data), then read the
 * page data straight into guest RAM and zero the zero runs. The record is
 * finished here (snap_reader_record_end(): for PART/END the payload CRC is
 * checked only then, so on an error guest RAM may hold unverified data of
 * the validated runs and the VM being restored must be discarded). Pages
 * written are marked dirty (guest_mem_mark_dirty), as every vmm write to
 * guest RAM is; a restore that takes this snapshot as the base of the next
 * incremental checkpoint clears the bitmap afterwards.
 * stats (may be NULL) accumulates: zero it before the section's START.
 * Returns 0 or -errno with a one-line message in err (-EPROTO wrong layout
 * or section identity, -EINVAL damaged run list, or the reader's error,
 * whose message is copied). */
int ram_load_record(struct snap_reader *r, const struct snap_record *rec, struct guest_mem *mem,
		    struct ram_stats *stats, char *err, size_t errlen);

#endif
