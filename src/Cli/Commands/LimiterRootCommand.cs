using System.CommandLine;
using System.CommandLine.Help;

namespace OrleansLimiter.Cli.Commands;

/// <summary>The <c>limiter</c> command tree: every command, the connection options, help.</summary>
internal static class LimiterRootCommand
{
    public static RootCommand Create()
    {
        var root = new RootCommand($"limiter: operate an OrleansLimiter cluster\n\n{ExitCodes.Summary}")
        {
            StatusCommand.Create(),
            ResetCommand.Create(),
            ConsumeCommand.Create(),
            LoadCommand.Create(),
            WatchCommand.Create(),
            LimitsCommand.Create(),
            BudgetsCommand.Create(),
            KeysCommand.Create(),
            CertsCommand.Create(),
            ReplayCommand.Create(),
        };
        foreach (var option in ConnectionOptions.All)
        {
            root.Options.Add(option);
        }

        // A bare `limiter` shows what it can do, but is still a usage error for scripts.
        root.SetAction(parse =>
        {
            new HelpAction().Invoke(parse);
            return ExitCodes.Usage;
        });
        root.Subcommands.Add(HelpCommand(root));
        return root;
    }

    /// <summary>Describes what is wrong with a command line that did not parse, in one line.</summary>
    public static string DescribeError(ParseResult parse)
    {
        if (parse.UnmatchedTokens is [var token, ..])
        {
            var command = parse.CommandResult.Command;
            return token.StartsWith('-') ? $"unknown option {token}"
                : command is RootCommand ? $"unknown command '{token}'"
                : command.Subcommands.Count > 0 ? $"unknown {command.Name} command '{token}'"
                : $"unexpected argument '{token}' for {command.Name}";
        }

        return parse.Errors[0].Message;
    }

    /// <summary><c>limiter help [command]</c>, as <c>limiter [command] --help</c>.</summary>
    private static Command HelpCommand(RootCommand root)
    {
        var path = new Argument<string[]>("command") { Arity = ArgumentArity.ZeroOrMore };
        var help = new Command("help", "show help") { Hidden = true };
        help.Arguments.Add(path);
        help.SetAction(parse => root.Parse([.. parse.GetValue(path) ?? [], "--help"]).Invoke());
        return help;
    }
}
