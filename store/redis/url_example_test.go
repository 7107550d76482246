package redis_test

import (
	"errors"
	"fmt"

	"github.com/trusthandoff/trusthandoff-go/store/redis"
)

// ParseURL reads the URL an operator gives; rediss:// is TLS. The Config prints without
// its password, and a refused URL is never quoted back.
func ExampleParseURL() {
	cfg, err := redis.ParseURL("rediss://app:s3cret@cache.example:6380/2")
	if err != nil {
		fmt.Println(err)
		return
	}
	cfg.Prefix = "prod:"
	fmt.Println(cfg, "TLS:", cfg.TLSConfig != nil)

	_, err = redis.ParseURL("rediss://:s3cret@cache.example/0?skip_verify=true")
	fmt.Println(errors.Is(err, redis.ErrURL))
	// Output:
	// rediss://app:xxxxx@cache.example:6380/2 TLS: true
	// true
}
