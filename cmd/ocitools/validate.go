package main

import (
	"errors"

	"github.com/urfave/cli/v2"
)

func validateCommand() *cli.Command {
	return &cli.Command{
		Name:  "validate",
		Usage: "not implemented yet",
		Action: func(*cli.Context) error {
			return errors.New("validate: not implemented yet")
		},
	}
}
