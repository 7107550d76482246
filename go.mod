module github.com/trusthandoff/trusthandoff-go

go 1.26
