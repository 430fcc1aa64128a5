module example.com/mockfgt-agent

go 1.19
