package ledger

import (
	"context"
	"encoding/binary"
	"io"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
	"github.com/jackc/pgx/v5"
)

// pgCopyStage copies recs into the session's staging table with binary
// COPY, encoding the rows itself: the columns are fixed and typed
// (text, bigint, boolean, timestamptz), so it writes PostgreSQL's binary
// COPY format directly instead of passing every value through pgx's
// type map as an interface value (18 conversions and about as many small
// allocations per record).
func pgCopyStage(ctx context.Context, tx pgx.Tx, recs []bus.UsageRecord) error {
	buf := pgCopyBufs.Get().(*pgCopyBuf)
	defer pgCopyBufs.Put(buf)
	buf.reset(len(recs))
	for i := range recs {
		buf.appendRow(&recs[i])
	}
	buf.finish()
	if _, err := tx.Conn().PgConn().CopyFrom(ctx, buf, pgCopyStageSQL); err != nil {
		return err
	}
	return nil
}

// pgCopyStageSQL is the COPY statement of [pgCopyStage].
var pgCopyStageSQL = `COPY pg_temp.` + pgStageTable + ` (` + strings.Join(pgColumns, ", ") + `) FROM STDIN (FORMAT binary)`

// pgCopyBufs recycles the encoding buffers of [pgCopyStage] (about 250
// bytes per record).
var pgCopyBufs = sync.Pool{New: func() any { return new(pgCopyBuf) }}

// pgCopyBuf is one batch in PostgreSQL's binary COPY format, read back
// by CopyFrom as an io.Reader.
type pgCopyBuf struct {
	b   []byte
	off int
}

// pgCopySignature starts every binary COPY stream; it is followed by a
// 32-bit flags field and a 32-bit header extension length, both zero.
const pgCopySignature = "PGCOPY\n\xff\r\n\x00"

// pgMicrosY2K is the Unix time of 2000-01-01 00:00:00 UTC, the epoch of
// binary timestamptz, in microseconds.
const pgMicrosY2K = 946_684_800 * 1_000_000

func (c *pgCopyBuf) reset(rows int) {
	// Keep a grown buffer, but do not pin a huge one forever.
	if cap(c.b) > 16<<20 {
		c.b = nil
	}
	if c.b == nil {
		c.b = make([]byte, 0, 19+rows*256)
	}
	c.b = append(c.b[:0], pgCopySignature...)
	c.b = binary.BigEndian.AppendUint32(c.b, 0) // flags
	c.b = binary.BigEndian.AppendUint32(c.b, 0) // header extension length
	c.off = 0
}

// appendRow appends r's columns in the order of [pgColumns].
func (c *pgCopyBuf) appendRow(r *bus.UsageRecord) {
	c.b = binary.BigEndian.AppendUint16(c.b, uint16(len(pgColumns)))
	for _, s := range [...]string{r.RequestID, r.Sub, r.Issuer, r.Tenant, r.ChannelID, r.KeyID, r.ModelID,
		r.Provider, r.ConversationID} {
		c.text(s)
	}
	for _, n := range [...]int64{r.InputTokens, r.OutputTokens, r.TotalTokens, r.CostMicroUSD} {
		c.int8(n)
	}
	c.bool(r.Cached)
	c.bool(r.Estimated)
	c.text(r.Status)
	c.timestamptz(r.StartedAt)
	c.timestamptz(r.FinishedAt)
}

// finish appends the trailer that ends the stream.
func (c *pgCopyBuf) finish() {
	c.b = binary.BigEndian.AppendUint16(c.b, math.MaxUint16) // -1
}

func (c *pgCopyBuf) text(s string) {
	c.b = binary.BigEndian.AppendUint32(c.b, uint32(len(s)))
	c.b = append(c.b, s...)
}

func (c *pgCopyBuf) int8(n int64) {
	c.b = binary.BigEndian.AppendUint32(c.b, 8)
	c.b = binary.BigEndian.AppendUint64(c.b, uint64(n))
}

func (c *pgCopyBuf) bool(v bool) {
	c.b = binary.BigEndian.AppendUint32(c.b, 1)
	if v {
		c.b = append(c.b, 1)
	} else {
		c.b = append(c.b, 0)
	}
}

// timestamptz encodes t the way pgx does: whole microseconds since
// 2000-01-01 UTC, the nanoseconds below a microsecond dropped.
func (c *pgCopyBuf) timestamptz(t time.Time) {
	us := t.Unix()*1_000_000 + int64(t.Nanosecond())/1000 - pgMicrosY2K
	c.b = binary.BigEndian.AppendUint32(c.b, 8)
	c.b = binary.BigEndian.AppendUint64(c.b, uint64(us))
}

// Read implements io.Reader for CopyFrom.
func (c *pgCopyBuf) Read(p []byte) (int, error) {
	if c.off >= len(c.b) {
		return 0, io.EOF
	}
	n := copy(p, c.b[c.off:])
	c.off += n
	return n, nil
}
