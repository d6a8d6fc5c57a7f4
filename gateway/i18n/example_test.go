package i18n_test

import (
	"fmt"
	"time"

	"mallgrid/billing"
	"mallgrid/gateway/i18n"
)

func ExampleNegotiate() {
	// A browser set to French that also reads Chinese, with no choice
	// remembered; then the same browser after its user picked English.
	fmt.Println(i18n.Negotiate("fr-FR,fr;q=0.9,zh-CN;q=0.5", ""))
	fmt.Println(i18n.Negotiate("fr-FR,fr;q=0.9,zh-CN;q=0.5", "en"))
	// Output:
	// zh-CN
	// en
}

func ExampleLocalizer() {
	site := time.FixedZone("CST", 8*3600)
	l := i18n.New(i18n.ZhCN, site)
	at := time.Date(2026, 3, 1, 16, 5, 0, 0, time.UTC)
	fmt.Println(l.State("cut_off"), l.Money(-1234*billing.Yuan-56*billing.Fen), l.KWh(1234567))
	fmt.Println(l.Time(at), l.T("login.too_many", "wait", 15*time.Minute))
	// Output:
	// 已断电 -¥1,234.56 1,234.567
	// 2026-03-02 00:05:00 登录失败次数过多，请 15 分钟后再试。
}
