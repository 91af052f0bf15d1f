module github.com/heraldgw/herald

go 1.26.0

require (
	github.com/sirupsen/logrus v1.10.2
	go.yaml.in/yaml/v3 v3.0.6
)

require golang.org/x/sys v0.49.0 // indirect
