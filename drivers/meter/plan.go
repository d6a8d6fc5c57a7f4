package meter

// Block is one read transaction of a plan: Count registers from Address with
// Function, covering the model registers listed in Registers.
type Block struct {
	Function  uint8
	Address   uint16
	Count     uint16
	Registers []Register
}

// Plan is the list of transactions that reads every register of a model.
type Plan []Block

// Transactions returns how many requests one read of the plan costs.
func (p Plan) Transactions() int { return len(p) }

// PlanStats returns what one read of m costs and saves: the transactions of
// its plan, and the values it reads, which is also the number of requests a
// driver that asks for one value at a time (mbmd) would send.
func PlanStats(m *Model) (transactions, values int) {
	return NewPlan(m).Transactions(), len(m.Registers)
}

// NewPlan turns m's registers into the fewest read transactions: registers of
// the same function code are merged while the gap between them is at most the
// model's MaxGap, the read stays within the model's MaxRead (at most
// MaxReadRegisters), and the merged range does not touch an unreadable span. A model that passed Validate always
// yields a plan; registers wider than a read are impossible by construction.
func NewPlan(m *Model) Plan {
	maxGap := m.MaxGap
	if maxGap == 0 {
		maxGap = DefaultMaxGap
	}
	var plan Plan
	for _, r := range m.sortedRegisters() {
		end := uint32(r.Address) + uint32(r.Type.Words()) // exclusive
		if n := len(plan); n > 0 {
			b := &plan[n-1]
			bEnd := uint32(b.Address) + uint32(b.Count)
			if b.Function == r.Function && canExtend(m, b, bEnd, r.Address, end, maxGap) {
				if end > bEnd {
					b.Count = uint16(end - uint32(b.Address))
				}
				b.Registers = append(b.Registers, r)
				continue
			}
		}
		plan = append(plan, Block{
			Function:  r.Function,
			Address:   r.Address,
			Count:     r.Type.Words(),
			Registers: []Register{r},
		})
	}
	return plan
}

func canExtend(m *Model, b *Block, bEnd uint32, addr uint16, end uint32, maxGap uint16) bool {
	if uint32(addr) > bEnd && uint32(addr)-bEnd > uint32(maxGap) {
		return false
	}
	if end > bEnd && end-uint32(b.Address) > uint32(m.maxRead()) {
		return false
	}
	newEnd := max(end, bEnd)
	for _, u := range m.Unreadable {
		if overlaps(b.Address, uint16(newEnd-1), u) {
			return false
		}
	}
	return true
}
