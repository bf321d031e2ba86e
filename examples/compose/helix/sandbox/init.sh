#!/bin/sh\necho sandbox init
