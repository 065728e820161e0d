import StreamProxy

StreamProxyCommand.runFromCommandLine()
