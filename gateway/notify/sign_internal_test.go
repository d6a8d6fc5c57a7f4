package notify

import (
	"net/url"
	"testing"
	"time"
)

// TestAliyunSign_Vectors: the worked examples Alibaba Cloud publishes
// (ECS DescribeRegions, and SMS SendSms), to the byte.
func TestAliyunSign_Vectors(t *testing.T) {
	ecs := url.Values{
		"AccessKeyId": {"testid"}, "Action": {"DescribeRegions"}, "Format": {"XML"},
		"SignatureMethod": {"HMAC-SHA1"}, "SignatureNonce": {"3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf"},
		"SignatureVersion": {"1.0"}, "Timestamp": {"2016-02-23T12:46:24Z"}, "Version": {"2014-05-26"},
	}
	wantSTS := "GET&%2F&AccessKeyId%3Dtestid%26Action%3DDescribeRegions%26Format%3DXML%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf%26SignatureVersion%3D1.0%26Timestamp%3D2016-02-23T12%253A46%253A24Z%26Version%3D2014-05-26"
	if got := aliyunStringToSign("GET", ecs); got != wantSTS {
		t.Errorf("string to sign\n got %s\nwant %s", got, wantSTS)
	}
	if got, want := aliyunSign("GET", ecs, "testsecret"), "OLeaidS1JvxuMvnyHOwuJ+uX5qY="; got != want {
		t.Errorf("ECS signature %s; want %s", got, want)
	}
	sms := url.Values{
		"AccessKeyId": {"testId"}, "Action": {"SendSms"}, "Format": {"XML"}, "OutId": {"123"},
		"PhoneNumbers": {"15300000001"}, "RegionId": {"cn-hangzhou"}, "SignName": {"阿里云短信测试专用"},
		"SignatureMethod": {"HMAC-SHA1"}, "SignatureNonce": {"45e25e9b-0a6f-4070-8c85-2956eda1b466"},
		"SignatureVersion": {"1.0"}, "TemplateCode": {"SMS_71390007"}, "TemplateParam": {`{"customer":"test"}`},
		"Timestamp": {"2017-07-12T02:42:19Z"}, "Version": {"2017-05-25"},
	}
	sig := aliyunSign("GET", sms, "testSecret")
	if sig != "zJDF+Lrzhj/ThnlvIToysFRq6t4=" {
		t.Errorf("SMS signature %s; want zJDF+Lrzhj/ThnlvIToysFRq6t4=", sig)
	}
	if got, want := percentEncode(sig), "zJDF%2BLrzhj%2FThnlvIToysFRq6t4%3D"; got != want {
		t.Errorf("in the URL %s; want %s", got, want)
	}
}

func TestPercentEncode(t *testing.T) {
	for in, want := range map[string]string{
		"a b":       "a%20b",
		"*":         "%2A",
		"~-_.":      "~-_.",
		"+/=":       "%2B%2F%3D",
		"阿":         "%E9%98%BF",
		"Az09":      "Az09",
		"{\"k\":1}": "%7B%22k%22%3A1%7D",
	} {
		if got := percentEncode(in); got != want {
			t.Errorf("percentEncode(%q) = %s; want %s", in, got, want)
		}
	}
}

// TestTC3_Vector: Tencent Cloud's published signature v3 example (CVM
// DescribeInstances), to the byte.
func TestTC3_Vector(t *testing.T) {
	payload := `{"Limit": 1, "Filters": [{"Values": ["\u672a\u547d\u540d"], "Name": "instance-name"}]}`
	auth, hashed := tc3Authorization("AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE", "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE",
		"cvm", "cvm.tencentcloudapi.com", "application/json; charset=utf-8", []byte(payload), time.Unix(1551113065, 0))
	if want := "5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031"; hashed != want {
		t.Errorf("hashed canonical request %s; want %s", hashed, want)
	}
	want := "TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE/2019-02-25/cvm/tc3_request, SignedHeaders=content-type;host, Signature=72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"
	if auth != want {
		t.Errorf("Authorization\n got %s\nwant %s", auth, want)
	}
}
