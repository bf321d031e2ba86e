package main // api server
