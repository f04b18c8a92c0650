using System.CommandLine;
using System.CommandLine.Invocation;
using System.Globalization;
using OrleansLimiter;
using OrleansLimiter.Cli;
using OrleansLimiter.Cli.Commands;
using OrleansLimiter.Security;

CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
using var cancel = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true;
    cancel.Cancel();
};

// No response files: a key may start with '@' (e.g. --key @team), which must stay a value.
var parse = LimiterRootCommand.Create().Parse(args, new ParserConfiguration { ResponseFileTokenReplacer = null });
int code;
try
{
    // Parse errors are reported before any command runs, so nothing has connected yet.
    code = parse.Action is ParseErrorAction
        ? Usage(LimiterRootCommand.DescribeError(parse))
        : await parse.InvokeAsync(new InvocationConfiguration { EnableDefaultExceptionHandler = false, ProcessTerminationTimeout = null }, cancel.Token);
}
catch (UsageException ex)
{
    code = Usage(ex.Message);
}
catch (ArgumentException ex)
{
    // Unknown provider, points above its limit: misuse, reported as the cluster said it.
    code = Fail(ExitCodes.Usage, ClusterConnection.FirstLine(ex.Message));
}
catch (ClusterUnreachableException ex)
{
    code = Fail(ExitCodes.Unreachable, ex.Message);
}
catch (OperatorAccessDeniedException ex)
{
    code = Fail(ExitCodes.Denied, "refused: " + ClusterConnection.FirstLine(ex.Message));
}
catch (LimiterStoreException ex)
{
    code = Fail(ExitCodes.StoreError, "store error: " + ClusterConnection.FirstLine(ex.Message));
}
catch (OperationCanceledException) when (cancel.IsCancellationRequested)
{
    code = ExitCodes.Interrupted;
}
catch (Exception ex)
{
    code = Fail(ExitCodes.Failure, $"{ex.GetType().Name}: {ClusterConnection.FirstLine(ex.Message)}");
}

// Orleans client threads must not keep a failed or finished command alive.
Console.Out.Flush();
Environment.Exit(code);

static int Usage(string message) => Fail(ExitCodes.Usage, $"{message.TrimEnd('.')} (see limiter --help)");

static int Fail(int code, string message)
{
    Console.Error.WriteLine($"limiter: {message}");
    return code;
}
