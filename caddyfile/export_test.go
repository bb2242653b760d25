package caddyfile

// Option name lists, for the external tests.
var (
	GlobalOptions   = globalOptions
	CookieOptions   = cookieOptions
	DeliveryOptions = deliveryOptions
	NetworkOptions  = networkOptions
	BadgerOptions   = badgerOptions
	PostgresOptions = postgresOptions
)
