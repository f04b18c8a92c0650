using OrleansLimiter.Soak;

// soak [--minutes M] [--seed S] [--dir D]   the run: cluster, load, faults, then the check
// soak client --name N --record F --seed S  one load process (started by the run)
// soak check --dir D                        the checker alone, on a finished run's directory
return args.FirstOrDefault() switch
{
    "client" => await LoadClient.RunAsync(SoakArguments.Parse(args[1..])),
    "check" => Checker.Run(SoakArguments.Parse(args[1..]).Directory ?? throw new ArgumentException("check needs --dir")),
    _ => await SoakRun.RunAsync(SoakArguments.Parse(args)),
};
