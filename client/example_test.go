package client_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/bay-sandbox/bay/client"
)

// These examples run against a small fake gateway so that `go test` can
// show their output; e2e/clients_test.go runs the same calls against a real
// one.

func Example() {
	gw := newFakeGateway()
	defer gw.Close()

	c, err := client.New(&client.Config{Address: gw.URL, APIKey: "my-key"})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	sb, err := c.CreateSandbox(ctx, &client.CreateSandboxRequest{Profile: "python-default"})
	if err != nil {
		panic(err)
	}
	res, err := c.Python(ctx, sb.ID, &client.PythonRequest{Code: "1+2"})
	if err != nil {
		panic(err)
	}
	fmt.Println(sb.ID, res.Success, res.Output)
	// Output: sandbox-0123456789ab true 3
}

func ExampleClient_PythonStream() {
	gw := newFakeGateway()
	defer gw.Close()
	c, _ := client.New(&client.Config{Address: gw.URL})

	res, err := c.PythonStream(context.Background(), "sandbox-0123456789ab", &client.PythonRequest{Code: "print(3)"},
		func(ch client.OutputChunk) { fmt.Printf("chunk %s: %q\n", ch.Stream, ch.Text) })
	if err != nil {
		panic(err)
	}
	fmt.Println("execution", res.ExecutionID, "success", res.Success)
	// Output:
	// chunk output: "3\n"
	// execution exec-0123456789ab success true
}

func ExampleClient_WaitReady() {
	gw := newFakeGateway()
	defer gw.Close()
	c, _ := client.New(&client.Config{Address: gw.URL})

	sb, err := c.WaitReady(context.Background(), "sandbox-0123456789ab", time.Millisecond, func(sb *client.Sandbox) {
		phase := "-"
		if sb.Phase != nil {
			phase = *sb.Phase
		}
		fmt.Println(sb.Status, phase)
	})
	fmt.Println(sb.Status, err)
	// Output:
	// starting health_check
	// ready -
	// ready <nil>
}

func ExampleAPIError() {
	gw := newFakeGateway()
	defer gw.Close()
	c, _ := client.New(&client.Config{Address: gw.URL})

	_, err := c.ReadFile(context.Background(), "sandbox-0123456789ab", "missing.txt")
	var ae *client.APIError
	if errors.As(err, &ae) {
		fmt.Println(ae.StatusCode, ae.Code, ae.RequestID, ae.Details["path"])
	}
	fmt.Println(client.IsNotFound(err))
	// Output:
	// 404 file_not_found req-abc missing.txt
	// true
}
