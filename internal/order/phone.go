package order

import "strings"

// E164Digits returns a phone number as the digits of its E.164 form
// (country calling code first, no "+"), or "" when it cannot be told.
//
// A number written internationally ("+44 20 7031 3000", "0044 …") keeps
// its digits. A national number needs country (ISO 3166-1 alpha-2, any
// case) for its calling code: one trunk prefix "0" is dropped (Italy, San
// Marino and the Vatican keep it, as their numbers do), "8" for Russia and
// Kazakhstan, and a NANP number is ten digits after an optional "1". A
// national-looking number that already starts with the country's code and
// is at least ten digits long is taken as international written without
// its "+". A bracketed "(0)" trunk prefix is dropped. Extensions ("ext", "x", "#" and what follows) are dropped. The
// result must have 8 to 15 digits, E.164's range for real subscriber
// numbers, or the number is left out.
func E164Digits(phone, country string) string {
	s := strings.ToLower(strings.TrimSpace(phone))
	for _, sep := range []string{"ext", "x", "#"} {
		if i := strings.Index(s, sep); i >= 0 {
			s = s[:i]
		}
	}
	// "+44 (0)20 …": the bracketed trunk prefix is dialled only inside
	// the country.
	s = strings.ReplaceAll(s, "(0)", "")
	international := strings.HasPrefix(s, "+")
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			b.WriteByte(c)
		case c == ' ' || c == '-' || c == '.' || c == '(' || c == ')' || c == '/' || c == '+':
		default:
			return "" // letters or other marks: not a phone number
		}
	}
	d := b.String()
	if !international && strings.HasPrefix(d, "00") {
		international, d = true, d[2:]
	}
	if !international {
		cc := CallingCode(country)
		if cc == "" {
			return ""
		}
		d = nationalToE164(d, cc, strings.ToUpper(strings.TrimSpace(country)))
	}
	if len(d) < 8 || len(d) > 15 || d[0] == '0' {
		return ""
	}
	return d
}

// nationalToE164 prefixes a national number with its calling code.
func nationalToE164(d, cc, country string) string {
	switch {
	case cc == "1":
		if len(d) == 11 && d[0] == '1' {
			return d
		}
		if len(d) == 10 {
			return "1" + d
		}
		return ""
	case cc == "7" && len(d) == 11 && d[0] == '8':
		return "7" + d[1:]
	case strings.HasPrefix(d, "0"):
		if country == "IT" || country == "SM" || country == "VA" {
			return cc + d
		}
		return cc + d[1:]
	case strings.HasPrefix(d, cc) && len(d) >= 10:
		return d
	}
	return cc + d
}

// CallingCode returns a country's international calling code (ITU-T
// E.164 assignments) for its ISO 3166-1 alpha-2 code, or "".
func CallingCode(country string) string {
	return callingCodes[strings.ToUpper(strings.TrimSpace(country))]
}

var callingCodes = func() map[string]string {
	const table = `AD376 AE971 AF93 AG1 AI1 AL355 AM374 AO244 AR54 AS1 AT43 AU61 AW297 AX358 AZ994
BA387 BB1 BD880 BE32 BF226 BG359 BH973 BI257 BJ229 BL590 BM1 BN673 BO591 BQ599 BR55 BS1 BT975 BW267 BY375 BZ501
CA1 CC61 CD243 CF236 CG242 CH41 CI225 CK682 CL56 CM237 CN86 CO57 CR506 CU53 CV238 CW599 CX61 CY357 CZ420
DE49 DJ253 DK45 DM1 DO1 DZ213 EC593 EE372 EG20 EH212 ER291 ES34 ET251
FI358 FJ679 FK500 FM691 FO298 FR33 GA241 GB44 GD1 GE995 GF594 GG44 GH233 GI350 GL299 GM220 GN224 GP590 GQ240
GR30 GT502 GU1 GW245 GY592 HK852 HN504 HR385 HT509 HU36 ID62 IE353 IL972 IM44 IN91 IO246 IQ964 IR98 IS354 IT39
JE44 JM1 JO962 JP81 KE254 KG996 KH855 KI686 KM269 KN1 KP850 KR82 KW965 KY1 KZ7
LA856 LB961 LC1 LI423 LK94 LR231 LS266 LT370 LU352 LV371 LY218
MA212 MC377 MD373 ME382 MF590 MG261 MH692 MK389 ML223 MM95 MN976 MO853 MP1 MQ596 MR222 MS1 MT356 MU230 MV960
MW265 MX52 MY60 MZ258 NA264 NC687 NE227 NF672 NG234 NI505 NL31 NO47 NP977 NR674 NU683 NZ64 OM968
PA507 PE51 PF689 PG675 PH63 PK92 PL48 PM508 PR1 PS970 PT351 PW680 PY595 QA974 RE262 RO40 RS381 RU7 RW250
SA966 SB677 SC248 SD249 SE46 SG65 SH290 SI386 SJ47 SK421 SL232 SM378 SN221 SO252 SR597 SS211 ST239 SV503 SX1
SY963 SZ268 TC1 TD235 TG228 TH66 TJ992 TK690 TL670 TM993 TN216 TO676 TR90 TT1 TV688 TW886 TZ255
UA380 UG256 US1 UY598 UZ998 VA39 VC1 VE58 VG1 VI1 VN84 VU678 WF681 WS685 XK383 YE967 YT262 ZA27 ZM260 ZW263`
	m := map[string]string{}
	for _, f := range strings.Fields(table) {
		m[f[:2]] = f[2:]
	}
	return m
}()
