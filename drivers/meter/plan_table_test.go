package meter

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// planCost is what one read of a model costs on an RTU line.
type planCost struct {
	transactions int
	registers    int // registers on the wire, gaps included
	bytes        int // request and reply frames
}

// wire is the time cost's bytes take at 9600 baud 8E1 (11 bits a byte),
// plus the bus's default 20 ms pause before each request: the two costs a
// request adds whatever the meter's own turnaround.
func (c planCost) wire() time.Duration {
	const byteTime = 11 * time.Second / 9600
	return time.Duration(c.bytes)*byteTime + time.Duration(c.transactions)*20*time.Millisecond
}

// rtuCost adds up RTU frames: a read request is 8 bytes, its reply 5 plus 2
// per register.
func rtuCost(counts []uint16) planCost {
	var c planCost
	for _, n := range counts {
		c.transactions++
		c.registers += int(n)
		c.bytes += 8 + 5 + 2*int(n)
	}
	return c
}

// TestPlanTable prints, for every built-in model, the cost of one meter
// cycle with NewPlan against one request per value (as mbmd reads), and
// checks that the planner never costs more. docs/BENCHMARKS.md shows its
// output:
//
//	go test -run TestPlanTable -v ./drivers/meter
func TestPlanTable(t *testing.T) {
	var b strings.Builder
	b.WriteString("| model | transactions: planned / one per value | registers read: planned / needed | bytes on the wire: planned / one per value | line time at 9600 8E1 with a 20 ms pause per request: planned / one per value |\n")
	b.WriteString("|---|---|---|---|---|\n")
	for _, m := range Builtin() {
		transactions, values := PlanStats(m)
		var planned, single []uint16
		for _, blk := range NewPlan(m) {
			planned = append(planned, blk.Count)
		}
		for _, r := range m.Registers {
			single = append(single, r.Type.Words())
		}
		p, s := rtuCost(planned), rtuCost(single)
		if p.transactions != transactions || s.transactions != values {
			t.Errorf("%s: PlanStats = %d, %d; want %d, %d", m.Name, transactions, values, p.transactions, s.transactions)
		}
		if transactions >= values {
			t.Errorf("%s: the plan takes %d transactions for %d values; want fewer", m.Name, transactions, values)
		}
		if p.wire() >= s.wire() {
			t.Errorf("%s: the plan takes %v on the line; one request per value %v", m.Name, p.wire(), s.wire())
		}
		fmt.Fprintf(&b, "| %s | %d / %d | %d / %d | %d / %d | %.0f ms / %.0f ms |\n",
			m.Name, transactions, values, p.registers, s.registers, p.bytes, s.bytes,
			float64(p.wire())/float64(time.Millisecond), float64(s.wire())/float64(time.Millisecond))
	}
	t.Log("read plans, one meter cycle:\n" + b.String())
}
