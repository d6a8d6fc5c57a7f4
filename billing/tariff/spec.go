package tariff

// Spec is a tariff as plain data, as the YAML config writes it. The yaml
// keys are the names Problem.Field uses. Which fields apply depends on Kind:
// Price for "flat"; Rates, Days, Seasons and Holidays for "tou"; Blocks for
// "tiered". Prices are decimal yuan per kWh ("1.05"), read with
// billing.ParsePrice so that they are exact.
type Spec struct {
	Name     string            `yaml:"name"`
	Kind     string            `yaml:"kind"`     // "flat" | "tou" | "tiered"
	Price    string            `yaml:"price"`    // flat: yuan/kWh, e.g. "1.05"
	Rates    map[string]string `yaml:"rates"`    // tou: rate name (sharp, peak, flat, valley) → price
	Days     []DaySpec         `yaml:"days"`     // tou: the day plans outside seasons
	Seasons  []SeasonSpec      `yaml:"seasons"`  // tou: months whose day plans differ
	Holidays []string          `yaml:"holidays"` // tou: "2026-10-01" dates on the holiday plan
	Blocks   []BlockSpec       `yaml:"blocks"`   // tiered: monthly blocks, lowest first
}

// DaySpec is a day plan: the windows of the days it applies to. Days is
// "weekday" (Monday to Friday), "weekend" (Saturday and Sunday), "holiday"
// (the dates in Spec.Holidays) or "all".
type DaySpec struct {
	Days    string       `yaml:"days"`
	Windows []WindowSpec `yaml:"windows"`
}

// WindowSpec is a stretch of the day at one rate, [From, To) in wall-clock
// "HH:MM". To may be "24:00"; From must be before To, so a window across
// midnight is written as two.
type WindowSpec struct {
	From string `yaml:"from"`
	To   string `yaml:"to"`
	Rate string `yaml:"rate"` // a key of Spec.Rates
}

// SeasonSpec gives the months in Months (1–12) day plans of their own,
// which replace Spec.Days on those months.
type SeasonSpec struct {
	Months []int     `yaml:"months"`
	Days   []DaySpec `yaml:"days"`
}

// BlockSpec is one tier of a tiered tariff: the month's energy up to
// UpToKWh (counted from the start of the month, not from the block before)
// costs Price. UpToKWh 0 means no upper bound and is for the last block
// only.
type BlockSpec struct {
	UpToKWh int64  `yaml:"up_to_kwh"`
	Price   string `yaml:"price"`
}
