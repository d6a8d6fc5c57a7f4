package compere_test

import (
	"fmt"
	"strings"
	"time"

	"mallgrid/drivers/compere"
	"mallgrid/drivers/meter"
)

func Example() {
	cst := time.FixedZone("UTC+8", 8*3600)
	var j compere.Joiner
	p, err := compere.Parse("MQTT_ENY_NOW", []byte(`{"id":"33B1225950027","zygsz":163.486,"zyjsz":8.668,"zyfsz":25.344,"zypsz":60.573,"zyvsz":68.898,"time":"20260117211500","isend":"1"}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	msg, ok, _ := j.Add(p)
	if !ok {
		return // more packets to come
	}
	m, err := compere.Decode(msg, cst)
	if err != nil {
		fmt.Println(err)
		return
	}
	r := compere.NewReading(nil, m.(*compere.Energy))
	wh, _ := r.ImportWh()
	valley, _ := r.EnergyWh(meter.Valley)
	fmt.Println(wh, valley, r.MeterTime.Format(time.DateTime), r.ZeroFrame)
	// Output: 163486 68898 2026-01-17 21:15:00 false
}

func ExampleModel_RelayCommand() {
	kpm33b, _ := compere.ModelByName("kpm33b")
	oprid, _ := compere.NewOprID(strings.NewReader(strings.Repeat("x", 16))) // crypto/rand.Reader in the gateway
	c, err := kpm33b.RelayCommand("33B1225950027", 1, false, oprid)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(c.Topic, string(c.Payload))
	// Output: MQTT_TELECTRL_25950027 {"do1":"0","oprid":"78787878787878787878787878787878"}
}
