using System.Globalization;

namespace OrleansLimiter.Soak;

/// <summary>The command line of the run, the client and the checker (<c>--name value</c> pairs).</summary>
internal sealed record SoakArguments(double Minutes, int Seed, string? Directory, string? Name, string? Record, int Clients)
{
    public static SoakArguments Parse(string[] args)
    {
        double minutes = 3;
        int? seed = null;
        string? directory = null, name = null, record = null;
        var clients = 3;
        for (var i = 0; i < args.Length; i++)
        {
            var value = i + 1 < args.Length ? args[i + 1] : throw new ArgumentException($"{args[i]} needs a value");
            switch (args[i])
            {
                case "--minutes": minutes = double.Parse(value, CultureInfo.InvariantCulture); break;
                case "--seed": seed = int.Parse(value, CultureInfo.InvariantCulture); break;
                case "--dir": directory = value; break;
                case "--name": name = value; break;
                case "--record": record = value; break;
                case "--clients": clients = int.Parse(value, CultureInfo.InvariantCulture); break;
                default: throw new ArgumentException($"unknown option '{args[i]}' (--minutes, --seed, --dir, --clients)");
            }

            i++;
        }

        if (minutes <= 0 || clients < 1)
        {
            throw new ArgumentException("--minutes must be above 0 and --clients at least 1");
        }

        // A run without a seed takes one from the clock, and prints it like any other.
        return new SoakArguments(minutes, seed ?? Environment.TickCount & 0x7fffffff, directory, name, record, clients);
    }
}
