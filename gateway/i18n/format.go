package i18n

import (
	"fmt"
	"strconv"
	"time"

	"mallgrid/billing"
)

// Money writes m to the fen with the yuan sign and comma grouping, the
// same in both languages: "¥1,234.56", "-¥12.30", "¥0.00". An amount
// finer than a fen (accrued charges carry micro-yuan) is rounded half away
// from zero, in integers; an amount that rounds to nothing has no sign.
func (l Localizer) Money(m billing.Money) string {
	u := magnitude(int64(m))
	fen := (u + uint64(billing.Fen)/2) / uint64(billing.Fen) // u ≤ 2⁶³: no overflow
	sign := ""
	if m < 0 && fen != 0 {
		sign = "-"
	}
	return fmt.Sprintf("%s¥%s.%02d", sign, group(fen/100, false), fen%100)
}

// KWh writes wh in kWh to the Wh, with comma grouping and three decimals:
// 1234567 → "1,234.567", -5 → "-0.005". The unit is the column's, not
// written here.
func (l Localizer) KWh(wh int64) string {
	u := magnitude(wh)
	sign := ""
	if wh < 0 {
		sign = "-"
	}
	return fmt.Sprintf("%s%s.%03d", sign, group(u/1000, false), u%1000)
}

// Number writes an integer with comma grouping: 12345 → "12,345".
func (l Localizer) Number(n int64) string { return group(magnitude(n), n < 0) }

// Time writes t in the Localizer's zone as "2006-01-02 15:04:05"; the
// zero time (never) is "—".
func (l Localizer) Time(t time.Time) string { return l.format(t, time.DateTime) }

// Date writes t's day in the Localizer's zone as "2006-01-02"; the zero
// time is "—". A day begins at midnight in the site's zone, not in UTC.
func (l Localizer) Date(t time.Time) string { return l.format(t, time.DateOnly) }

// Clock writes t's time of day in the Localizer's zone as "15:04:05"; the
// zero time is "—".
func (l Localizer) Clock(t time.Time) string { return l.format(t, time.TimeOnly) }

// Zone writes the zone's name and its offset from UTC at t, the line a
// page shows once so that its times can be read anywhere:
// "Asia/Shanghai (UTC+08:00)".
func (l Localizer) Zone(t time.Time) string {
	return l.Location().String() + " (UTC" + t.In(l.Location()).Format("-07:00") + ")"
}

func (l Localizer) format(t time.Time, layout string) string {
	if t.IsZero() {
		return "—"
	}
	return t.In(l.Location()).Format(layout)
}

// magnitude returns |n| as an unsigned number; math.MinInt64 has no
// positive int64 twin but has one here.
func magnitude(n int64) uint64 {
	if n < 0 {
		return uint64(-(n + 1)) + 1
	}
	return uint64(n)
}

// group writes u with a comma every three digits, "-" first when neg.
func group(u uint64, neg bool) string {
	s := strconv.FormatUint(u, 10)
	out := make([]byte, 0, len(s)+len(s)/3+1)
	if neg && u != 0 {
		out = append(out, '-')
	}
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}

// Duration writes d to the second in its two largest units, what a wait
// or a hold is told in: "45 s", "1 min 30 s", "2 h 5 min", "3 分钟". A
// negative d is 0 s.
func (l Localizer) Duration(d time.Duration) string {
	s := int64(max(d, 0).Round(time.Second) / time.Second)
	h, m := s/3600, s/60%60
	switch {
	case h > 0 && m > 0:
		return l.T("duration.hours", "n", h) + " " + l.T("duration.minutes", "n", m)
	case h > 0:
		return l.T("duration.hours", "n", h)
	case m > 0 && s%60 > 0:
		return l.T("duration.minutes", "n", m) + " " + l.T("duration.seconds", "n", s%60)
	case m > 0:
		return l.T("duration.minutes", "n", m)
	}
	return l.T("duration.seconds", "n", s)
}

// Ago writes how long before now t was, in the largest whole unit: "12 s
// ago", "5 min ago", "3 h ago" (up to two days), "4 d ago"; "never" for
// the zero time. A t after now (clocks of two machines) is "0 s ago".
func (l Localizer) Ago(t, now time.Time) string {
	if t.IsZero() {
		return l.T("ago.never")
	}
	d := max(now.Sub(t), 0)
	switch {
	case d < time.Minute:
		return l.T("ago.seconds", "n", int64(d/time.Second))
	case d < time.Hour:
		return l.T("ago.minutes", "n", int64(d/time.Minute))
	case d < 48*time.Hour:
		return l.T("ago.hours", "n", int64(d/time.Hour))
	}
	return l.T("ago.days", "n", int64(d/(24*time.Hour)))
}
