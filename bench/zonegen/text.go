package zonegen

import (
	"bufio"
	"fmt"
	"io"
)

// countingWriter counts what passes through it.
type countingWriter struct {
	w io.Writer
	n int64
}

// Write passes p on and counts what was written.
func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// WriteTo writes the zone as an RFC 1035 master file with origin ".":
// SOA and NS at the apex, the name server's address, then every name.
// Addresses come from the benchmarking range 198.18.0.0/15 (RFC 2544) and
// 2001:db8::/32.
func (z *Zone) WriteTo(w io.Writer) (int64, error) {
	cw := &countingWriter{w: w}
	bw := bufio.NewWriterSize(cw, 1<<16)
	ns := "ns." + z.Suffix
	fmt.Fprintf(bw, "$ORIGIN .\n. 3600 IN SOA %s hostmaster.%s 1 7200 900 1209600 %d\n", ns, z.Suffix, NegativeTTL)
	fmt.Fprintf(bw, ". 3600 IN NS %s\n%s 3600 IN A 127.0.0.1\n", ns, ns)
	for i, n := range z.Names {
		if n.CNAME != "" {
			fmt.Fprintf(bw, "%s %d IN CNAME %s\n", n.Name, n.TTL, n.CNAME)
			continue
		}
		fmt.Fprintf(bw, "%s %d IN A 198.%d.%d.%d\n", n.Name, n.TTL, 18+(i>>16)&1, (i>>8)&0xff, i&0xff)
		if n.AAAA {
			fmt.Fprintf(bw, "%s %d IN AAAA 2001:db8::%x:%x\n", n.Name, n.TTL, i>>16, i&0xffff)
		}
		if n.MX {
			fmt.Fprintf(bw, "%s %d IN MX 10 mail.%s\n", n.Name, n.TTL, n.Name)
		}
		if n.TXT {
			fmt.Fprintf(bw, "%s %d IN TXT \"v=spf1 ip4:198.18.0.0/15 -all\"\n", n.Name, n.TTL)
		}
	}
	if err := bw.Flush(); err != nil {
		return cw.n, fmt.Errorf("zonegen: write: %w", err)
	}
	return cw.n, nil
}
