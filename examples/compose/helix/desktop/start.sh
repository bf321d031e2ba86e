#!/bin/sh\necho desktop start
