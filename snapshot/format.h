/* The record layer of the snapshot format (docs/snapshot-format.md, the
 * spec): the 64-byte file header, records (32-byte header, payload, payload
 * CRC32C), the section-id state machine and the EOF record. It knows
 * nothing of what sections contain; the registry checks names and versions.
 *
 * Writing. snap_writer_begin() writes the file header. Then each record is
 * written one of two ways, because payload_len precedes the payload:
 *   - buffered (START, FULL, small PART/END): snap_writer_section_begin() or
 *     snap_writer_record_begin(), then put the payload through the writer
 *     (snap_writer_put_*, or snap_put_* on snap_writer_stream(), which is
 *     what a section's save() gets); snap_writer_record_end() emits header,
 *     payload and CRC. At most SNAP_FULL_MAX bytes.
 *   - declared (RAM): snap_writer_part_begin() with the exact payload
 *     length writes the header at once; the snap_writer_put_* calls go
 *     straight to the stream and are CRC'd on the way; record_end checks the
 *     count and appends the CRC. For the page-aligned layout,
 *     snap_writer_pad_len() says how much padding the payload will hold.
 * snap_writer_eof() writes the EOF record; then commit the stream. Writer
 * errors stick (in the writer and in the stream, so a commit fails too).
 *
 * Reading. snap_reader_begin() checks the file header. snap_reader_next()
 * reads and checks a record header. A START/FULL payload is read whole
 * (it is bounded) and its CRC checked before anything is handed out: the
 * section data (after the identity) is then read with snap_reader_get_* or
 * snap_get_* on snap_reader_stream(), which is what a section's load()
 * gets; nothing damaged reaches a device. A PART/END payload (RAM, up to
 * 4 GiB) is streamed: snap_reader_get_*() CRC what they return and the CRC
 * is compared by snap_reader_record_end() — a RAM loader must treat the data
 * as unverified until then (the restore fails as a whole if it does not
 * match). snap_reader_record_end() also refuses unread payload bytes unless
 * snap_reader_skip_payload() was called. The EOF record is checked entirely
 * by snap_reader_next().
 *
 * Errors: 0 or a negative errno: -EINVAL damage (checksums, fixed values,
 * bounds), -ENODATA truncation, -EPROTO a well-formed file this build cannot
 * accept (newer format, unknown flags) or one breaking the rules of
 * sequence (section ids, PART without START, data left over in a payload),
 * or the stream's own error (-EIO...). The reader fills its message buffer
 * with one line naming the record, its section and the byte offset; errors
 * stick. Nothing here logs. */
#ifndef SNAPSHOT_FORMAT_H
#define SNAPSHOT_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct snap_stream;

#define SNAP_FORMAT_VERSION    1
#define SNAP_FILE_HEADER_SIZE  64
#define SNAP_RECORD_HEADER_SIZE 32
#define SNAP_RECORD_CRC_SIZE   4

/* File header flags. */
#define SNAP_FLAG_PAGE_ALIGNED (1u << 0)   /* RAM page data at 4 KiB file offsets */
#define SNAP_FLAG_INCREMENTAL  (1u << 1)   /* issue #5 */
#define SNAP_FLAGS_KNOWN       (SNAP_FLAG_PAGE_ALIGNED | SNAP_FLAG_INCREMENTAL)

/* Record flags. */
#define SNAP_REC_FLAG_PAGE_ALIGNED (1u << 0)

#define SNAP_WRITER_MAX        16          /* writer string, NUL-padded */
#define SNAP_SECTION_NAME_MAX  64
#define SNAP_FULL_MAX          ((uint64_t)64 << 20)   /* START/FULL payload bound */
#define SNAP_PART_MAX          ((uint64_t)4 << 30)    /* PART/END payload bound */
#define SNAP_EOF_PAYLOAD_LEN   20
#define SNAP_MAX_SECTIONS_PER_FILE 65536
#define SNAP_PAGE_SIZE         4096

enum snap_rec_type {
	SNAP_REC_START = 1,
	SNAP_REC_PART = 2,
	SNAP_REC_END = 3,
	SNAP_REC_FULL = 4,
	SNAP_REC_EOF = 5,
};

/* The file header's variable fields. */
struct snap_file_header {
	uint32_t format_version;
	uint32_t flags;
	uint64_t created_ns;
	char writer[SNAP_WRITER_MAX + 1];   /* NUL-terminated */
};

/* True if name is a valid section name: [a-z0-9_.-]{1,64}. */
bool snap_format_name_valid(const char *name, size_t len);
/* Padding a page-aligned record needs when its header starts at file
 * offset header_offset and prefix_len payload bytes (e.g. a RAM run list)
 * come before the padding: zero bytes up to the next multiple of 4096. */
uint64_t snap_format_pad_len(uint64_t header_offset, uint64_t prefix_len);

/* ---- Writing ---------------------------------------------------------- */

enum snap_writer_state { SNAP_W_IDLE, SNAP_W_BUFFERED, SNAP_W_DECLARED, SNAP_W_DONE };

#define SNAP_WRITER_MAX_OPEN 16   /* sections START-ed and not yet ENDed */

struct snap_writer {
	struct snap_stream *s;
	uint64_t base;              /* stream offset of the file header */
	uint32_t flags;
	int err;                    /* first error, sticky */
	uint64_t seq;               /* records written */
	uint32_t sections;          /* ids handed out (START + FULL) */
	uint32_t open[SNAP_WRITER_MAX_OPEN];
	unsigned int nopen;
	/* the record being written */
	enum snap_writer_state state;
	enum snap_rec_type type;
	uint32_t section_id;
	uint8_t rec_flags;
	uint64_t rec_offset;        /* declared: header offset (from base) */
	uint64_t declared;          /* declared: payload_len */
	uint64_t written;           /* declared: payload bytes so far */
	uint32_t crc;               /* declared: running payload CRC */
	struct snap_stream *buf;    /* buffered: the payload */
};

/* Write the file header: flags (SNAP_FLAG_*), created_ns (CLOCK_REALTIME),
 * writer (at most 16 printable ASCII chars, e.g. "vmm 0.1.0"). Offsets in
 * the file count from the stream's offset now (0 for a new stream). */
int snap_writer_begin(struct snap_stream *s, uint32_t flags, uint64_t created_ns,
		      const char *writer, struct snap_writer *w);
/* Begin a buffered START or FULL record for a new section and put its
 * identity; *id gets the section's id (1, 2, 3, ... in file order). */
int snap_writer_section_begin(struct snap_writer *w, enum snap_rec_type type,
			      const char *name, uint32_t instance, uint32_t version,
			      uint32_t *id);
/* Begin a buffered PART or END record of an open (START-ed) section. */
int snap_writer_record_begin(struct snap_writer *w, uint32_t section_id,
			     enum snap_rec_type type);
/* Begin a PART or END record of exactly payload_len bytes, written
 * through as they are put. page_aligned sets record flag bit 0 (the file
 * must have SNAP_FLAG_PAGE_ALIGNED); the payload then holds
 * snap_writer_pad_len() zero bytes, put with snap_writer_put_pad(). */
int snap_writer_part_begin(struct snap_writer *w, uint32_t section_id,
			   enum snap_rec_type type, uint64_t payload_len, bool page_aligned);
/* Padding the next record's payload needs if it is page-aligned and
 * prefix_len bytes precede the padding: call before snap_writer_part_begin()
 * to compute payload_len = prefix_len + pad + data. */
uint64_t snap_writer_pad_len(const struct snap_writer *w, uint64_t prefix_len);
/* The payload of the current record (sticky errors, like snap_put_*). */
void snap_writer_put_bytes(struct snap_writer *w, const void *buf, size_t len);
void snap_writer_put_u8(struct snap_writer *w, uint8_t v);
void snap_writer_put_le16(struct snap_writer *w, uint16_t v);
void snap_writer_put_le32(struct snap_writer *w, uint32_t v);
void snap_writer_put_le64(struct snap_writer *w, uint64_t v);
/* Page data (len a multiple of 4096); see snap_put_pages() for how long
 * buf must stay unchanged — the CRC is taken now. */
void snap_writer_put_pages(struct snap_writer *w, const void *buf, size_t len);
/* Zero bytes up to the next 4 KiB file offset (page-aligned records only;
 * nothing otherwise). */
void snap_writer_put_pad(struct snap_writer *w);
/* Buffered records: the stream the payload is collected in, to hand to a
 * section's save(); NULL otherwise. */
struct snap_stream *snap_writer_stream(struct snap_writer *w);
/* Finish the current record. */
int snap_writer_record_end(struct snap_writer *w);
/* Write the EOF record; -EPROTO if a section is still open or a record
 * unfinished. The stream is then ready for snap_stream_commit(). */
int snap_writer_eof(struct snap_writer *w);
/* The sticky error, 0 if none. */
int snap_writer_error(const struct snap_writer *w);
/* Free what an unfinished record holds (after an error). Idempotent. */
void snap_writer_release(struct snap_writer *w);

/* ---- Reading ---------------------------------------------------------- */

/* One record, as snap_reader_next() returns it. */
struct snap_record {
	enum snap_rec_type type;
	uint8_t flags;              /* SNAP_REC_FLAG_* */
	uint32_t section_id;        /* 0 for EOF */
	uint64_t seq;
	uint64_t offset;            /* of the record header, from the file start */
	uint64_t payload_len;
	/* The section (START/FULL: this record's identity; PART/END: its START's). */
	char name[SNAP_SECTION_NAME_MAX + 1];
	uint32_t instance;
	uint32_t version;
	uint64_t data_len;          /* START/FULL: section data after the identity */
	/* EOF: its fields, already checked. */
	uint64_t eof_record_count;
	uint64_t eof_total_bytes;
	uint32_t eof_sections;
};

struct snap_reader_section {
	char name[SNAP_SECTION_NAME_MAX + 1];
	uint32_t instance;
	uint32_t version;
	uint8_t type;               /* SNAP_REC_START or SNAP_REC_FULL */
	bool ended;                 /* START: its END was read */
};

enum snap_reader_state { SNAP_R_BEGIN, SNAP_R_IDLE, SNAP_R_BUFFERED, SNAP_R_STREAMED, SNAP_R_DONE };

struct snap_reader {
	struct snap_stream *s;
	struct snap_file_header hdr;
	uint64_t base;
	int err;                    /* first error, sticky */
	char *msg;
	size_t msglen;
	uint64_t seq;               /* records read */
	uint32_t nsections;
	uint32_t cap;
	unsigned int nopen;
	struct snap_reader_section *sec;   /* [nsections], index id - 1 */
	/* the current record */
	enum snap_reader_state state;
	struct snap_record rec;
	uint64_t remaining;         /* streamed: payload bytes not yet read */
	uint32_t crc;               /* streamed: CRC of the bytes read */
	struct snap_stream *data;   /* buffered: the section data */
};

/* Read and check the file header (from the stream's current offset); the
 * header is in r->hdr. err (errlen bytes) receives the message of any
 * failure of this reader, now or later. Release r with snap_reader_release()
 * whatever happens. */
int snap_reader_begin(struct snap_stream *s, struct snap_reader *r, char *err, size_t errlen);
/* The next record's header (and for START/FULL/EOF its whole payload),
 * checked. The previous record must have been finished. */
int snap_reader_next(struct snap_reader *r, struct snap_record *rec);
/* The current payload (sticky errors; zeros after one). Reading past the
 * payload is an error (-EPROTO). */
void snap_reader_get_bytes(struct snap_reader *r, void *buf, size_t len);
uint8_t snap_reader_get_u8(struct snap_reader *r);
uint16_t snap_reader_get_le16(struct snap_reader *r);
uint32_t snap_reader_get_le32(struct snap_reader *r);
uint64_t snap_reader_get_le64(struct snap_reader *r);
/* Page data (len a multiple of 4096), straight into buf. */
void snap_reader_get_pages(struct snap_reader *r, void *buf, size_t len);
/* The padding of a page-aligned record (record flag bit 0): up to the next
 * 4 KiB file offset, checked to be zero. Nothing for other records. */
void snap_reader_get_pad(struct snap_reader *r);
/* Payload bytes not yet read. */
uint64_t snap_reader_remaining(const struct snap_reader *r);
/* START/FULL: the section data as a stream, for a section's load(); what is
 * read from it counts as read. NULL for other records. */
struct snap_stream *snap_reader_stream(struct snap_reader *r);
/* Read (and CRC) the rest of the payload, discarding it. */
void snap_reader_skip_payload(struct snap_reader *r);
/* Finish the record: every payload byte read (or skipped), the payload CRC
 * (streamed records) matches. */
int snap_reader_record_end(struct snap_reader *r);
/* The sticky error, 0 if none. */
int snap_reader_error(const struct snap_reader *r);
void snap_reader_release(struct snap_reader *r);

#endif
