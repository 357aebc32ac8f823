// Replaced at bundle time would be nicer; a constant keeps the core free of package.json reads.
export const VERSION = '0.1.0';
