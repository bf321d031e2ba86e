console.log("qwen")
